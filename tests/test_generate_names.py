"""Names from files and models are made safe for C and for the serial protocol."""
from c_arrays import parse_c_array

from tinyopt.codegen.c_array import hex_rows
from tinyopt.codegen.names import c_identifier, safe_label


def test_c_identifier():
    assert c_identifier("model-v2.tflite") == "model_v2_tflite"
    assert c_identifier("2nd model") == "model_2nd_model"
    assert c_identifier("int") == "model_int"
    assert c_identifier('"; system("x"); //') == "system_x"
    assert c_identifier("___") == "model"
    assert c_identifier("__reserved") == "reserved"


def test_safe_label_keeps_protocol_framing():
    label = safe_label('my model"%]\\n[x')
    assert label == "my_model____n_x"
    assert not set(label) & set('"%[]\\ \n')
    assert safe_label("") == "model" and len(safe_label("a" * 200)) == 48


def test_c_array_round_trip():
    data = bytes(range(256)) * 3 + b"\x00\xff"
    text = "const unsigned char x[] = {\n" + ",\n".join(hex_rows(data)) + ",\n};\n"
    assert parse_c_array(text) == data
