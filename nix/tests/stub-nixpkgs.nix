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

    # Like a derivation, a command's passthru attributes are the result's own.
    runCommand = name: env: script: { inherit name env script; outPath = "@${name}@"; } // env.passthru or { };
    symlinkJoin = args: args // { outPath = "@${args.name}@"; };
    writeText = name: text: { inherit name text; outPath = "@${name}@"; };
    writeTextDir = path: text: { inherit path text; outPath = "@text-${path}@"; };

    dockerTools = {
      caCertificates = placeholder "ca-certificates";
      buildLayeredImage = args: args // { outPath = "@image-${args.name}@"; };
    };

    # nginx.override records its arguments; overrideAttrs applies the function to a sample
    # of nixpkgs' attributes and records the result, for the test to read.
    nginx.override = args: {
      overrideAttrs = f: placeholder "nginx-small" // {
        overrideArgs = args;
        overridden = f {
          configureFlags = [ "--with-http_ssl_module" "--with-http_xslt_module" "--with-threads" ];
          buildInputs = map placeholder [ "openssl" "zlib-ng" "pcre2" "libxml2" "libxslt" "perl" ];
        };
      };
    };

    pkgsStatic.stdenv.cc = placeholder "musl-cc" // { targetPrefix = "${cpu}-unknown-linux-musl-"; };

    nixpkgs-fmt = placeholder "nixpkgs-fmt";
  }
  # Every package the flake's devShell lists must be named here too.
  // lib.genAttrs [
    "binutils-unwrapped"
    "nukeReferences"
    "patchelf"
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
