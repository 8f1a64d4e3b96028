# datapress-api: the static musl binary at the path the contract names, and nothing else.
{ runCommand
, api # the flake's `api` package
, contractImage # ./contract-image.nix, applied to the contract
}:

contractImage {
  component = "api";
  # A copy, not a link into the store: `docker cp` and debug containers see a plain file.
  root = runCommand "datapress-api-root" { allowedReferences = [ ]; } ''
    install -D -m 0555 ${api}/bin/datapress-api $out/usr/bin/datapress-api
  '';
  inventory = [ api ];
}
