//! The audio-gen skill against the simulated studio, through the real sandbox.
