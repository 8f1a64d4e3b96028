# A stand-in for rust-overlay: the toolchain it would return is the file and overrides asked
# for. Test-only.
_final: _prev: {
  rust-bin.fromRustupToolchainFile = file: {
    override = args: { toolchainFile = toString file; } // args;
  };
}
