"""Reading generated C arrays back, for the tests that check them byte for byte."""


def parse_c_array(text: str) -> bytes:
    """The bytes of the first `{ 0x.., ... };` initializer in TEXT (a model_data.cc)."""
    body = text[text.index("{") + 1:text.index("};")]
    return bytes(int(tok, 16) for tok in body.replace("\n", " ").split(",") if tok.strip())
