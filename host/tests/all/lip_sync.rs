//! The lip-sync skill against the simulated studio, through the real sandbox.
