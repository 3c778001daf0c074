"""The physical method: the user's pgBackRest. The backup is the newest one in the stanza's
repository (or one drtool asks pgBackRest to take), plus a recovery target drtool sets on
the source with exact counts that match it; the restore is `pgbackrest restore` of the whole
cluster into the target's data directory, recovered to that target and promoted.
drtool's store keeps only the manifest: the files are pgBackRest's."""

NAME = "pgbackrest"
PHYSICAL = True
# The backups are pgBackRest's, in its repository: `pgbackrest verify` checks them there.
REPOSITORY = True
