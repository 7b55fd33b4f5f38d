"""aot lowerings, one module per operator family; the registry imports every module here."""
