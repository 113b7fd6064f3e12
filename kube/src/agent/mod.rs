//! The node agent: plumbs each pod the CNI plugin asks for into OVS and OVN.
