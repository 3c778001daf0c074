"""The logical method: pg_dump -Fd of each database (with exact counts from the dump's own
snapshot) and pg_dumpall's globals, kept in drtool's store; pg_restore into the target."""

NAME = "dump"
PHYSICAL = False
