"""HTTP endpoints of ssi-plugin: the standard search API with ``ssi`` queries (``proxy``) and its runner (``server``)."""
