//! The tts skill against the simulated studio, through the real sandbox.
