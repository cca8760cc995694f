"""`/verify` arguments as people type them."""

from handlers.verify import split_number_and_name


def test_number_glued_to_a_chinese_name_is_split_and_spaced_input_is_kept() -> None:
    assert [
        split_number_and_name(["RC2027-01-J-0007张三丰"]),
        split_number_and_name(["RC2027-01-J-0007", "Li", "Lei"]),
        split_number_and_name(["张三丰"]),
        split_number_and_name(["RC2027-01-J-0007"]),
    ] == [
        ["RC2027-01-J-0007", "张三丰"],
        ["RC2027-01-J-0007", "Li", "Lei"],
        ["张三丰"],
        ["RC2027-01-J-0007"],
    ]
