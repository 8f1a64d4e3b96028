# datapress-front: NGINX with the project's configuration, the site packaged exactly as
# front/build.sh packages it, and the API binary for the container healthcheck.
{ lib
, runCommand
, nginx
, api # the flake's `api` package
, contractImage # ./contract-image.nix, applied to the contract
, version
, revision # shown by the page, so a rollout shows which build serves
}:

let
  # A static site and a reverse proxy need neither embedded Perl nor TCP stream proxying.
  nginxSmall = nginx.override {
    withPerl = false;
    withStream = false;
  };

  # Only what front/build.sh and the NGINX files need: editing docs never rebuilds the image.
  front = lib.fileset.toSource {
    root = ../front;
    fileset = lib.fileset.unions [
      ../front/build.sh
      ../front/site
      ../front/nginx/nginx.conf
      ../front/nginx/mime.types
      (lib.fileset.fileFilter (file: file.hasExt "conf") ../front/nginx/upstream.d)
    ];
  };
in
contractImage {
  component = "front";
  root = runCommand "datapress-front-root" { } ''
    # build.sh rewrites files in place: run it on a writable copy, never on the store.
    cp -r ${front} front && chmod -R u+w front
    DATAPRESS_VERSION=${version} DATAPRESS_REVISION=${revision} bash front/build.sh $out/usr/share/nginx/html

    # nginx.conf includes mime.types (next to it) and upstream.d/*.conf, which Kubernetes
    # replaces with a ConfigMap mounted over the folder.
    install -D -m 0444 -t $out/etc/nginx front/nginx/nginx.conf front/nginx/mime.types
    install -D -m 0444 -t $out/etc/nginx/upstream.d front/nginx/upstream.d/*.conf

    install -D -m 0555 ${api}/bin/datapress-api $out/usr/bin/datapress-api
    mkdir -p $out/usr/sbin
    ln -s ${nginxSmall}/bin/nginx $out/usr/sbin/nginx
  '';
}
