# One image of images/contract.json: everything images/build.sh reads from the contract is
# read here too (name, tags, user, ports, env, stop signal, healthcheck, labels), so the Nix
# image and the offline image agree. The caller only brings the files (`root`) and the
# packages those files come from (`inventory`, for the SBOM).
{ lib
, dockerTools
, runCommand
, symlinkJoin
, writeText
, writeTextDir
, python3
, contract
, version
, revision
, created
}:

{ component # a key of contract.images: "api" or "front"
, root # a store path laid out like the image's filesystem (usr/..., etc/...)
, inventory # the packages the image's files come from (copies included)
}:

let
  image = contract.images.${component};
  timing = contract.healthcheckTiming;
  tags = [ version ] ++ contract.extraTags;

  inherit (contract) username;
  uid = toString contract.uid;
  gid = toString contract.gid;
  home = "/home/${username}";

  # The users of images/assemble.py, none with a shell (nixpkgs' fakeNss gives root and
  # nobody /bin/sh), so that name lookups succeed and nothing advertises a login.
  nss = symlinkJoin {
    name = "datapress-nss";
    paths = [
      (writeTextDir "etc/passwd" ''
        root:x:0:0:root:/root:/sbin/nologin
        nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
        ${username}:x:${uid}:${gid}:${username}:${home}:/sbin/nologin
      '')
      (writeTextDir "etc/group" ''
        root:x:0:
        nobody:x:65534:
        ${username}:x:${gid}:
      '')
      (writeTextDir "etc/nsswitch.conf" ''
        passwd: files
        group: files
        hosts: files dns
      '')
    ];
  };

  contents = [ root nss dockerTools.caCertificates ];

  seconds = s: s * 1000000000; # Docker's config counts durations in nanoseconds

  layered = dockerTools.buildLayeredImage {
    inherit (image) name;
    # The workspace version, not the derivation hash: the same tag as the offline image.
    tag = version;
    inherit created contents;

    # The only writable paths of a read-only root. Relative on purpose: this runs in the
    # layer's root, and an absolute /tmp would silently land outside it (nixpkgs#257172).
    extraCommands = lib.concatMapStrings (path: "mkdir -p -m 1777 .${path}\n") contract.writablePaths;
    # The user's own home and root's, as in the offline image; fakeroot lets the build set
    # their owner.
    fakeRootCommands = ''
      mkdir -p -m 0700 .${home} ./root
      chown ${uid}:${gid} .${home}
    '';

    config = {
      User = contract.user;
      WorkingDir = "/";
      Entrypoint = image.entrypoint;
      Cmd = image.cmd;
      Env = image.env;
      ExposedPorts = lib.genAttrs image.ports (_: { });
      StopSignal = image.stopSignal;
      # Same probe and timings as images/assemble.py writes in the offline Dockerfile.
      Healthcheck = {
        Test = [ "CMD" ] ++ image.healthcheck;
        Interval = seconds timing.intervalSeconds;
        Timeout = seconds timing.timeoutSeconds;
        StartPeriod = seconds timing.startPeriodSeconds;
        Retries = timing.retries;
      };
      Labels = {
        "org.opencontainers.image.title" = image.title;
        "org.opencontainers.image.description" = image.description;
        "org.opencontainers.image.source" = contract.source;
        "org.opencontainers.image.revision" = revision;
        "org.opencontainers.image.version" = version;
        "org.opencontainers.image.licenses" = contract.licenses;
        "org.opencontainers.image.created" = created;
      };
    };
  };

  # Every tag of the contract (version and extraTags) in the archive: `docker load` creates
  # them all, as images/build.sh tags them all.
  archive = runCommand "${image.name}-${version}.tar"
    {
      nativeBuildInputs = [ python3 ];
      passthru = {
        inherit component root tags inventory;
        image = layered;
        # What the SBOM covers (scripts/ci/sbom-images.sh): its runtime closure holds every
        # package a file of the image comes from.
        closure = writeText "${image.name}-closure" (lib.concatLines (map toString (contents ++ inventory)));
        inherit (image) maxSizeMB;
      };
    } ''
    python3 ${./image-archive.py} retag ${layered} $out ${lib.concatMapStringsSep " " (tag: "${image.name}:${tag}") tags}
  '';
in
archive
