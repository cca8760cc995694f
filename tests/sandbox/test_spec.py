"""The spec check: unknown methods, missing / unknown parameters, wire type decoding."""

from bot.devtools.sandbox import check_call, load_spec


def test_check_call_accepts_ptb_form_values():
    params = {
        "chat_id": "42",
        "text": "hi",
        "disable_notification": "true",
        "reply_markup": '{"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}',
    }
    assert check_call("sendMessage", params) == []


def test_check_call_unknown_method_is_reported():
    assert check_call("sendTelepathy", {}) == ["unknown method 'sendTelepathy'"]


def test_check_call_method_name_is_case_insensitive():
    assert check_call("SENDMESSAGE", {"chat_id": 1, "text": "x"}) == []


def test_check_call_missing_required_is_reported():
    assert check_call("sendMessage", {"chat_id": 1}) == [
        "sendMessage: required parameter 'text' is missing"
    ]


def test_check_call_unknown_parameter_is_reported():
    assert check_call("sendMessage", {"chat_id": 1, "text": "x", "colour": "red"}) == [
        "sendMessage: parameter 'colour' is not in the spec"
    ]


def test_check_call_type_mismatch_is_reported():
    violations = check_call(
        "sendMessage",
        {
            "chat_id": 1,
            "text": "x",
            "disable_notification": "maybe",
            "entities": '{"not": "a list"}',
        },
    )
    assert [v.split(" ")[2] for v in violations] == ["'disable_notification'", "'entities'"]


def test_decode_converts_wire_strings_to_types():
    decoded, violations = load_spec().decode(
        "sendMessage",
        {
            "chat_id": "-100123",
            "text": "5",
            "protect_content": "false",
            "entities": '[{"type": "bold", "offset": 0, "length": 1}]',
        },
    )
    assert violations == []
    assert decoded == {
        "chat_id": -100123,
        "text": "5",
        "protect_content": False,
        "entities": [{"type": "bold", "offset": 0, "length": 1}],
    }


def test_decode_keeps_username_chat_id_as_string():
    decoded, _ = load_spec().decode("getChat", {"chat_id": "@examdesk_staff"})
    assert decoded == {"chat_id": "@examdesk_staff"}
