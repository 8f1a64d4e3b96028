# A stand-in for `import nixpkgs { system; overlays; }`: every package is a placeholder that
# records how it was asked for, so a test can read what the flake would build. Test-only.
{ system, overlays }:
let
  lib = import ./stub-lib.nix;
  cpu = builtins.head (builtins.split "-" system);
  placeholder = name: { outPath = "@${name}@"; pname = name; };

  base = final: {
    inherit lib;
    stdenv.hostPlatform.parsed.cpu.name = cpu;

    # Like nixpkgs' callPackage: the function's arguments come from the package set.
    callPackage = file: args:
      let f = import file; in
      f (builtins.intersectAttrs (builtins.functionArgs f) final // args);

    runCommand = name: env: script: { inherit name env script; outPath = "@${name}@"; };

    dockerTools = {
      caCertificates = placeholder "ca-certificates";
      fakeNss.override = args: placeholder "fake-nss" // { inherit args; };
      buildLayeredImage = args: args // { outPath = "@image-${args.name}@"; };
    };

    # The override's arguments end up in the store path, where the image script uses it.
    nginx.override = args: placeholder ("nginx"
      + lib.concatMapStrings (n: "-${n}=${if args.${n} then "true" else "false"}") (builtins.attrNames args));

    nixpkgs-fmt = placeholder "nixpkgs-fmt";
  }
  # Every package the flake's devShell lists must be named here too.
  // lib.genAttrs [
    "cargo-audit"
    "cargo-nextest"
    "deadnix"
    "docker-compose"
    "jq"
    "kubectl"
    "kustomize"
    "python3"
    "shellcheck"
  ]
    placeholder;

  # The same fixed point nixpkgs builds, so overlays see `final` and `prev`.
  apply = prev: overlay: prev // overlay final prev;
  final = builtins.foldl' apply (base final) overlays;
in
final
