{
  description = "DataPress POC: the Rust API (crane) and its two container images (dockerTools)";

  inputs = {
    # The release crane supports (its lib/default.nix: minSupported = "26.05"); the lock
    # pins the revision crane's own tests ran against.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

    crane.url = "github:ipetkov/crane";

    # Rust exactly as rust-toolchain.toml says, with no extra hash to maintain.
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    # RustSec advisories for `cargo audit`, read offline inside the sandbox.
    advisory-db = {
      url = "github:rustsec/advisory-db";
      flake = false;
    };
  };

  outputs = { self, nixpkgs, crane, rust-overlay, advisory-db }:
    let
      inherit (nixpkgs) lib;

      # The images are Linux images: build them on the Linux machines CI and servers use.
      systems = [ "x86_64-linux" "aarch64-linux" ];

      # Read once, shared by the offline builder (images/build.sh) and the images below.
      contract = builtins.fromJSON (builtins.readFile ./images/contract.json);
      version = (builtins.fromTOML (builtins.readFile ./Cargo.toml)).workspace.package.version;
      revision = self.rev or self.dirtyRev or "unknown";

      # The commit's date, never the build's (images/build.sh uses the same one): the same
      # source always gives the same image.
      created =
        let
          d = self.lastModifiedDate; # YYYYMMDDhhmmss
          part = start: len: builtins.substring start len d;
        in
        "${part 0 4}-${part 4 2}-${part 6 2}T${part 8 2}:${part 10 2}:${part 12 2}Z";

      perSystem = system:
        let
          pkgs = import nixpkgs {
            inherit system;
            overlays = [ (import rust-overlay) ];
          };

          # Static musl binaries need no libc in the image (crane's cross-musl example).
          muslTarget = "${pkgs.stdenv.hostPlatform.parsed.cpu.name}-unknown-linux-musl";

          # The pinned toolchain and this system's musl standard library (rust-toolchain.toml
          # lists the x86_64 one, which the offline builder uses).
          craneLib = (crane.mkLib pkgs).overrideToolchain (p:
            (p.rust-bin.fromRustupToolchainFile ./rust-toolchain.toml).override {
              targets = [ muslTarget ];
            });

          # Cargo manifests and Rust sources only: editing docs or manifests rebuilds nothing.
          src = craneLib.cleanCargoSource ./.;

          # The allocator (mimalloc) is C: compiled for musl by nixpkgs' musl compiler, as the
          # offline builder compiles it with Debian's musl-gcc, never against glibc's headers.
          muslCC = pkgs.pkgsStatic.stdenv.cc;

          # Shared by the build and every check, so they all reuse one dependency build.
          commonArgs = {
            inherit src;
            strictDeps = true;
            CARGO_BUILD_TARGET = muslTarget;
            CARGO_BUILD_RUSTFLAGS = "-C target-feature=+crt-static";
            "CC_${builtins.replaceStrings [ "-" ] [ "_" ] muslTarget}" = "${muslCC}/bin/${muslCC.targetPrefix}cc";
          };

          cargoArtifacts = craneLib.buildDepsOnly commonArgs;

          api = craneLib.buildPackage (commonArgs // {
            inherit cargoArtifacts;
            pname = "datapress-api";
            cargoExtraArgs = "--locked --package datapress-api";
            # cargo-auditable embeds the dependency list, so Trivy and `cargo audit bin` can
            # read the binary (as images/build.sh does offline).
            nativeBuildInputs = [ pkgs.cargo-auditable ];
            cargoBuildCommand = "cargo auditable build --release";
            # Same build-time revision as images/build.sh; only here, so deps stay cached.
            DATAPRESS_REVISION = revision;
            # The tests run once, in the nextest check.
            doCheck = false;
          });

          # Both images share the contract's user, labels, healthcheck and writable /tmp.
          contractImage = import ./nix/contract-image.nix {
            inherit (pkgs) lib dockerTools runCommand symlinkJoin writeText writeTextDir python3;
            inherit contract version revision created;
          };

          apiImage = pkgs.callPackage ./nix/api-image.nix { inherit api contractImage; };
          frontImage = pkgs.callPackage ./nix/front-image.nix { inherit api contractImage version revision; };

          checks = {
            inherit api;

            clippy = craneLib.cargoClippy (commonArgs // {
              inherit cargoArtifacts;
              cargoClippyExtraArgs = "--all-targets -- --deny warnings";
            });

            fmt = craneLib.cargoFmt { inherit src; };

            nextest = craneLib.cargoNextest (commonArgs // { inherit cargoArtifacts; });

            audit = craneLib.cargoAudit { inherit src advisory-db; };
          }
          # The image contract: static binary, minimal NGINX and its configuration, sizes.
          // pkgs.callPackage ./nix/checks.nix { inherit api apiImage frontImage version revision; };
        in
        {
          inherit checks;

          packages = {
            inherit api;
            default = api;
            api-image = apiImage;
            front-image = frontImage;
            # What each image's SBOM covers (scripts/ci/sbom-images.sh).
            api-image-closure = apiImage.closure;
            front-image-closure = frontImage.closure;
          };

          # `nix develop`: the pinned toolchain (added by crane) and what the Makefile calls.
          devShell = craneLib.devShell {
            inherit checks;
            packages = with pkgs; [
              cargo-audit
              cargo-nextest
              deadnix
              docker-compose
              jq
              kubectl
              kustomize
              nixpkgs-fmt
              python3
              shellcheck
            ];
          };

          # The formatter `nix/tools.sh fmt` also runs offline, so both always agree.
          formatter = pkgs.nixpkgs-fmt;
        };

      bySystem = lib.genAttrs systems perSystem;
    in
    {
      packages = lib.mapAttrs (_: s: s.packages) bySystem;
      checks = lib.mapAttrs (_: s: s.checks) bySystem;
      devShells = lib.mapAttrs (_: s: { default = s.devShell; }) bySystem;
      formatter = lib.mapAttrs (_: s: s.formatter) bySystem;
    };
}
