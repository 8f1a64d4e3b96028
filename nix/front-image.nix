# datapress-front: NGINX with the project's configuration, the site packaged exactly as
# front/build.sh packages it, and the API binary for the container healthcheck.
{ lib
, runCommand
, nginx
, patchelf
, nukeReferences
, api # the flake's `api` package
, contractImage # ./contract-image.nix, applied to the contract
, version
, revision # shown by the page, so a rollout shows which build serves
}:

let
  # NGINX built for this job: a static site and a narrow reverse proxy need no embedded
  # Perl, XSLT, TCP or mail proxying, nor the third-party modules nixpkgs adds by default
  # (the flake's front-nginx-minimal check reads `nginx -V`).
  nginxSmall = (nginx.override {
    withPerl = false;
    withStream = false;
    withMail = false;
    modules = [ ];
  }).overrideAttrs (old: {
    configureFlags = lib.remove "--with-http_xslt_module" old.configureFlags;
    buildInputs = lib.filter (p: !(lib.elem (lib.getName p) [ "libxml2" "libxslt" "perl" ])) old.buildInputs;
  });

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

  root = runCommand "datapress-front-root"
    {
      nativeBuildInputs = [ patchelf nukeReferences ];
      # Copies only: a store path left in a file would pull its whole package into the image.
      allowedReferences = [ ];
    } ''
    # build.sh rewrites files in place: run it on a writable copy, never on the store.
    cp -r ${front} front && chmod -R u+w front
    DATAPRESS_VERSION=${version} DATAPRESS_REVISION=${revision} bash front/build.sh $out/usr/share/nginx/html

    # nginx.conf includes mime.types (next to it) and upstream.d/*.conf, which Kubernetes
    # replaces with a ConfigMap mounted over the folder.
    install -D -m 0444 -t $out/etc/nginx front/nginx/nginx.conf front/nginx/mime.types
    install -D -m 0444 -t $out/etc/nginx/upstream.d front/nginx/upstream.d/*.conf

    install -D -m 0555 ${api}/bin/datapress-api $out/usr/bin/datapress-api

    # NGINX and only the libraries its loader resolves, copied to /lib, as images/assemble.py
    # picks them from Debian: nixpkgs' glibc alone (~30 MB) would exceed the size limit.
    nginx=${nginxSmall}/bin/nginx
    interp=$(patchelf --print-interpreter $nginx)
    install -D -m 0555 $nginx $out/usr/sbin/nginx
    install -D -m 0555 "$interp" $out/lib/$(basename "$interp")
    "$interp" --list $nginx | sed -n 's#^.* => \(/[^ ]*\) (0x[0-9a-f]*)$#\1#p' >libs
    [ -s libs ] || { echo "no library listed for $nginx" >&2; exit 1; }
    while read -r lib; do
      # The loader stays executable (the kernel opens PT_INTERP for execution).
      [ "$(basename "$lib")" = "$(basename "$interp")" ] || install -m 0444 "$lib" $out/lib/
    done <libs
    chmod u+w $out/usr/sbin/nginx
    patchelf --set-interpreter /lib/$(basename "$interp") --set-rpath /lib $out/usr/sbin/nginx
    # Paths into the store left in the copies (default prefixes, search paths) name nothing
    # in the image: blank them, so the image closure is exactly these files.
    chmod u+w $out/usr/sbin/nginx $out/lib/*
    # Each copied library finds its own dependencies in /lib too (a RUNPATH only serves the
    # object that carries it, and the loader's built-in search path is blanked below), and
    # every library any copy needs is there.
    for f in $out/usr/sbin/nginx $out/lib/*; do
      [ "$(basename "$f")" != "$(basename "$interp")" ] || continue
      [ "$f" = $out/usr/sbin/nginx ] || patchelf --set-rpath /lib "$f"
      for needed in $(patchelf --print-needed "$f"); do
        [ -e "$out/lib/$needed" ] || { echo "$f needs $needed, which was not copied" >&2; exit 1; }
      done
    done
    nuke-refs $out/usr/sbin/nginx $out/lib/*
    chmod a-w $out/usr/sbin/nginx $out/lib/*
  '';
in
contractImage {
  component = "front";
  inherit root;
  # The packages the copies come from, with their own dependencies: the SBOM lists them.
  inventory = [ nginxSmall api ];
}
