//! Lab bring-up.
