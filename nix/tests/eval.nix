# Evaluates flake.nix's outputs with stand-ins for nixpkgs, crane and rust-overlay, and
# returns what the flake would build as plain data for test_flake.py. Nothing is built or
# fetched: this checks our own Nix code (names, wiring, contract reading), not nixpkgs'.
# Usage: nix-instantiate --eval --strict --json nix/tests/eval.nix
let
  flake = import ../../flake.nix;
  lib = import ./stub-lib.nix;

  self = {
    outPath = toString ../..;
    lastModifiedDate = "20260803054905";
    rev = "0123456789abcdef0123456789abcdef01234567";
  };

  nixpkgs = {
    outPath = ./stub-nixpkgs.nix;
    lib = import ./stub-lib.nix;
  };

  rust-overlay.outPath = ./stub-rust-overlay.nix;

  # crane's API as the flake uses it; each builder records its arguments.
  crane.mkLib = pkgs:
    let
      mkCraneLib = toolchain:
        let record = kind: args: { inherit kind args toolchain; }; in
        {
          overrideToolchain = f: mkCraneLib (f pkgs);
          cleanCargoSource = path: toString path;
          buildDepsOnly = record "deps";
          buildPackage = args: record "package" args // { outPath = "@api@"; };
          cargoClippy = record "clippy";
          cargoFmt = record "fmt";
          cargoNextest = record "nextest";
          cargoAudit = args: record "audit" (args // { advisory-db = toString args.advisory-db; });
          devShell = record "devShell";
        };
    in
    mkCraneLib null;

  outputs = flake.outputs {
    inherit self nixpkgs crane rust-overlay;
    advisory-db.outPath = "@advisory-db@";
  };

  describeRoot = drv: {
    inherit (drv) name script;
    inherit (drv.env) allowedReferences;
    tools = map (p: p.pname) (drv.env.nativeBuildInputs or [ ]);
  };

  # A package of the flake's images: the tagged archive, the image inside, what it holds.
  describeImage = pkg:
    let image = pkg.image; in {
      inherit (image) name tag created extraCommands fakeRootCommands config;
      roots = map describeRoot (builtins.filter (c: c ? script) image.contents);
      nss = map (f: { inherit (f) path text; }) (builtins.head (builtins.filter (c: c ? paths) image.contents)).paths;
      others = map (c: c.outPath) (builtins.filter (c: !(c ? script) && !(c ? paths)) image.contents);
      archive = { inherit (pkg) name script tags maxSizeMB component; };
      closure = pkg.closure.text;
      inventory = map (p: p.outPath) pkg.inventory;
    };

  describeSystem = system:
    let
      packages = outputs.packages.${system};
      checks = outputs.checks.${system};
    in
    {
      packages = builtins.attrNames packages;
      checks = builtins.mapAttrs (_: c: c.kind or "command") checks;
      checkScripts = builtins.mapAttrs (_: c: c.script) (lib.filterAttrs (_: c: c ? script) checks);
      defaultIsApi = packages.default == packages.api;
      api = {
        inherit (packages.api.args) pname cargoExtraArgs CARGO_BUILD_TARGET DATAPRESS_REVISION doCheck;
        inherit (packages.api) toolchain;
        depsTarget = packages.api.args.cargoArtifacts.args.CARGO_BUILD_TARGET;
        cc = lib.filterAttrs (n: _: builtins.substring 0 3 n == "CC_") packages.api.args;
      };
      clippyArgs = checks.clippy.args.cargoClippyExtraArgs;
      nextestTarget = checks.nextest.args.CARGO_BUILD_TARGET;
      auditDb = checks.audit.args.advisory-db;
      devShellPackages = map (p: p.pname) outputs.devShells.${system}.default.args.packages;
      formatter = outputs.formatter.${system}.pname;
      images = {
        api = describeImage packages.api-image;
        front = describeImage packages.front-image;
      };
      closures = builtins.mapAttrs (_: p: p.text) { inherit (packages) api-image-closure front-image-closure; };
      nginx = { inherit (builtins.head packages.front-image.inventory) overrideArgs overridden; };
    };
in
{
  systems = builtins.attrNames outputs.packages;
  x86_64-linux = describeSystem "x86_64-linux";
  aarch64-linux = describeSystem "aarch64-linux";
}
