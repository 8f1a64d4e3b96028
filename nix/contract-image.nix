# One image of images/contract.json: everything images/build.sh reads from the contract is
# read here too (name, user, ports, env, stop signal, healthcheck, labels), so the Nix image
# and the offline image agree. The caller only brings the files (`root`).
{ lib
, dockerTools
, contract
, version
, revision
, created
}:

{ component # a key of contract.images: "api" or "front"
, root # a store path laid out like the image's filesystem (usr/..., etc/...)
}:

let
  image = contract.images.${component};
  timing = contract.healthcheckTiming;

  inherit (contract) username;
  uid = toString contract.uid;
  gid = toString contract.gid;
  home = "/home/${username}";

  # /etc/passwd and /etc/group with the contract's non-root user, so name lookups succeed.
  nss = dockerTools.fakeNss.override {
    extraPasswdLines = [ "${username}:x:${uid}:${gid}:${username}:${home}:/sbin/nologin" ];
    extraGroupLines = [ "${username}:x:${gid}:" ];
  };

  seconds = s: s * 1000000000; # Docker's config counts durations in nanoseconds
in
dockerTools.buildLayeredImage {
  inherit (image) name;
  # The workspace version, not the derivation hash: the same tag as the offline image.
  tag = version;
  inherit created;

  # No shell, no package manager: the files, the users and the CA bundle.
  contents = [ root nss dockerTools.caCertificates ];

  # The only writable paths of a read-only root. Relative on purpose: this runs in the
  # layer's root, and an absolute /tmp would silently land outside it (nixpkgs#257172).
  extraCommands = lib.concatMapStrings (path: "mkdir -p -m 1777 .${path}\n") contract.writablePaths;
  # The user's own home, as in the offline image; fakeroot lets the build set its owner.
  fakeRootCommands = ''
    mkdir -p -m 0700 .${home}
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
}
