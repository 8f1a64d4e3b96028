# The few nixpkgs `lib` functions the flake uses, rebuilt from builtins, so Debian's Nix
# can evaluate flake.nix and nix/*.nix here without nixpkgs. Test-only.
let
  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);

  # A fileset is a list of existing paths here; toSource lists them relative to its root.
  relativeTo = root: path:
    let r = toString root; p = toString path; in
    assert builtins.substring 0 (builtins.stringLength r + 1) p == r + "/";
    builtins.substring (builtins.stringLength r + 1) (-1) p;

  fileFilter = pred: dir:
    let
      entries = builtins.readDir dir;
      hasExt = name: ext: builtins.match ".*\\.${ext}" name != null;
      visit = name:
        let path = dir + "/${name}"; in
        if entries.${name} == "directory" then fileFilter pred path
        else if pred { inherit name; type = entries.${name}; hasExt = hasExt name; } then [ path ]
        else [ ];
    in
    builtins.concatLists (map visit (builtins.attrNames entries));
in
{
  inherit genAttrs;
  inherit (builtins) mapAttrs filter elem;
  concatMapStrings = f: list: builtins.concatStringsSep "" (map f list);
  concatMapStringsSep = sep: f: list: builtins.concatStringsSep sep (map f list);
  concatLines = list: builtins.concatStringsSep "" (map (l: l + "\n") list);
  remove = e: builtins.filter (x: x != e);
  filterAttrs = pred: set: builtins.listToAttrs (map (name: { inherit name; value = set.${name}; })
    (builtins.filter (name: pred name set.${name}) (builtins.attrNames set)));
  getName = x: x.pname or (builtins.parseDrvName x.name).name;

  fileset = {
    inherit fileFilter;
    unions = sets: builtins.concatLists (map
      (s: if builtins.isList s then s else assert builtins.pathExists s; [ s ])
      sets);
    # The source's placeholder path names its files, for the test to copy exactly those.
    toSource = { root, fileset }: {
      outPath = "@source=${builtins.concatStringsSep "," (map (relativeTo root) fileset)}@";
    };
  };
}
