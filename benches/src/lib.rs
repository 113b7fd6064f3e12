//! Benchmarks of ovnkit: criterion benches (`cargo bench -p benches`) and the comparison clients
//! that `benches/peers` runs beside ovn-nbctl, the Python IDL and ovsdbapp. See
//! `benches/README.md` for the figures.
