# The image contract held by `nix flake check`, as images/build.sh holds the offline images
# to it: a static API binary reporting this version and revision, a minimal NGINX that
# accepts the front's configuration, and both images within the contract's size limits.
{ runCommand
, binutils-unwrapped
, patchelf
, python3
, api # the flake's `api` package
, apiImage
, frontImage
, version
, revision
}:

let
  imageSize = image: runCommand "datapress-${image.component}-image-size-check" { nativeBuildInputs = [ python3 ]; } ''
    python3 ${./image-archive.py} check-size ${image} ${toString image.maxSizeMB}
    touch $out
  '';

  # The shipped NGINX copy, run through the loader copied beside it.
  frontNginx = ''
    root=${frontImage.root}
    nginx() { "$root$(patchelf --print-interpreter "$root/usr/sbin/nginx")" --library-path "$root/lib" "$root/usr/sbin/nginx" "$@"; }
  '';
in
{
  # The same script images/build.sh runs on the offline binary, on the build and its copy.
  api-static = runCommand "datapress-api-static-check" { nativeBuildInputs = [ binutils-unwrapped ]; } ''
    bash ${../images/check-api-binary.sh} ${api}/bin/datapress-api ${version} ${revision}
    bash ${../images/check-api-binary.sh} ${apiImage.root}/usr/bin/datapress-api ${version} ${revision}
    touch $out
  '';

  front-nginx-minimal = runCommand "datapress-front-nginx-minimal-check" { nativeBuildInputs = [ patchelf ]; } ''
    ${frontNginx}
    bash ${./front-nginx-minimal.sh} <(nginx -V 2>&1)
    touch $out
  '';

  front-nginx-config = runCommand "datapress-front-nginx-config-check" { nativeBuildInputs = [ patchelf ]; } ''
    ${frontNginx}
    bash ${./front-nginx-config.sh} "$root" "$PWD/nginx-t"
    # access_log /dev/stdout reopens fd 1: a file the builder owns, not the log pipe.
    nginx -t -q -e stderr -c "$PWD/nginx-t/nginx.conf" >"$PWD/nginx-t/stdout"
    touch $out
  '';

  api-image-size = imageSize apiImage;
  front-image-size = imageSize frontImage;
}
