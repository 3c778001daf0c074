"""drtool: disaster-recovery drills driven by Ansible, with measured RTO and RPO."""

__version__ = "0.1.0"
