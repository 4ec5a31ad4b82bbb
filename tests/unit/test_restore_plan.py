"""Which dump restore_dump.py loads."""



from operations.deploy_log import line as log_line
from operations.states.restore import dump_before, rolled_back_from

A, B, C, D = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3", "ddddddddddd4"


def test_restore_picks_the_dump_written_before_the_switch():
    log = [
        log_line("dump", A, "me", "backups/craft-1-aaa.sql.gz"),
        log_line("switch", A, "me", "from -"),
        log_line("switch", B, "me", f"from {A}"),  # the dump of A was still fresh
        log_line("dump", C, "me", "backups/craft-2-ccc.sql.gz"),
        log_line("switch", C, "me", f"from {B}"),
        log_line("rollback", B, "me", f"from {C}"),
    ]
    assert dump_before(log, B) == "craft-1-aaa.sql.gz"
    assert dump_before(log, C) == "craft-2-ccc.sql.gz"
    assert dump_before(log, D) is None
    assert rolled_back_from(log) == C
    assert rolled_back_from([*log, log_line("rollback", C, "me", f"named; left {B}")]) == B
