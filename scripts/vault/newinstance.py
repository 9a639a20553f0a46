"""`restore --new-instance`: a NEW instance with the stack's settings, then a backup restored into it.

For a lost database (the instance is gone: never restore into it) and for ransomware (never
into the read-only standby): the new instance is the writable target. Order:

1. the backup is chosen and its metadata checked (nothing is created for a backup that is not there);
2. the instance's settings: the contract's restore target for that region (network, parameter
   group, KMS key, class, engine version) or, for the primary region without one, the production
   instance's own (scripts.pitr.rds, shared with ``restore --to-time``);
3. CreateDBInstance (encrypted with the stack's key, master password kept by RDS in Secrets
   Manager, IAM authentication on), then boto3's ``db_instance_available`` waiter;
4. its settings as RDS reports them must equal the stack's (key included);
5. the backup is restored into it by the ordinary restore (scripts.vault.restore): globals first,
   so the roles exist (without passwords), then the database with its properties, verified.

A failure after step 3 leaves the new instance (tagged, listed by ``restore --list-restored``,
removed by ``restore --cleanup NAME``) and nothing else changed; the error says so. Passwords are
never in a backup: the master user's stays in its Secrets Manager secret; the application's roles
are recreated without one and get it from Secrets Manager (``ALTER ROLE … PASSWORD``) or use IAM
authentication (``GRANT rds_iam``).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Mapping

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from scripts.common import log, utcnow
from scripts.contract import Contract
from scripts.pitr import rds
from scripts.postgres.dsn import endpoint_dsn, login
from scripts.vault.layout import select_backup
from scripts.vault.restore import perform_restore

DEFAULT_MASTER_USER = "postgres"


@dataclass
class NewInstanceResult:
    database: str
    side: str
    region: str
    instance: str
    backup_id: str
    plan: list[str]
    executed: bool = False
    endpoint: str | None = None
    master_user_secret: str | None = None
    create_seconds: float = 0.0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    restore: dict[str, Any] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def restore_new_instance(contract: Contract, *, side: str = "dr", db: str | None = None,
                         backup_id: str | None = None, before: datetime | None = None, latest: bool = False,
                         no_owner: bool = False, role_map: Mapping[str, str] | None = None, jobs: int = 1,
                         yes: bool = False, filed: str | None = None, args=None) -> NewInstanceResult:
    """Create an instance in ``side``'s region and restore ``db``'s chosen backup into it; with ``yes`` really do it.

    ``filed``: where the backups are filed when not under the database's name (a drill's own prefix).
    """
    started = time.monotonic()
    database = contract.database(db)
    manifest, _head = select_backup(contract, side, filed or database.name, backup_id=backup_id, before=before,
                                    latest=latest)
    target = rds.target_settings(contract, database, side)
    version = rds.engine_version(contract, database, side, target)
    name = rds.instance_name(contract, database, utcnow(), "new")
    storage = rds.storage_for(int(manifest.doc["dump"]["bytes"]))
    master = login(contract, admin=True).get("user") or DEFAULT_MASTER_USER
    arguments = rds.create_arguments(contract, database, name, target, backup_id=manifest.id, engine_version=version,
                                     storage_gb=storage, master_user=master)
    from_settings = "the stack's restore target" if side in database.restore else \
        f"{database.primary.identifier}'s own settings"
    plan = [
        f"backup {manifest.id} (snapshot {manifest.doc['times']['snapshot']}) of {database.name} from the "
        f"{side} vault",
        f"create NEW instance {name} in {contract.regions[side]}: PostgreSQL {version}, class "
        f"{target.instance_class}, {storage} GiB gp3, subnet group {target.subnet_group_name}, security groups "
        f"{', '.join(target.security_group_ids)}, parameter group {target.parameter_group_name} ({from_settings}); "
        f"encrypted with {target.kms_key_id}; private, tagged {rds.TAG_RESTORE_OF}={database.primary.identifier}",
        f"master user {master}: its password generated and kept by RDS in Secrets Manager (never shown); "
        "IAM database authentication on",
        "wait until available; check its settings (key included) and that it answers",
        f"restore the backup into database {database.db_name} on it: roles first (without passwords: set them "
        "from Secrets Manager with ALTER ROLE ... PASSWORD, or GRANT rds_iam for IAM authentication), "
        "then the database with its properties, verified against the manifest",
        f"leave {name} running for the service to move to; remove it with `restore --cleanup {name}`",
    ]
    result = NewInstanceResult(database.name, side, contract.regions[side], name, manifest.id, plan)
    if not yes:
        return result
    rds.start_create(contract, side, arguments)
    try:
        instance, result.create_seconds = rds.wait_checked(contract, side, name, target)
        result.settings = dict(instance.settings, host=instance.host, port=instance.port)
        result.endpoint = f"{instance.host}:{instance.port}"
        result.master_user_secret = instance.settings.get("masterUserSecretArn")
        user, password = rds.master_credentials(contract, side, instance)
        parts = conninfo_to_dict(endpoint_dsn(contract, instance.host, instance.port, database.db_name,
                                              superuser=True))
        target_dsn = make_conninfo(**{**parts, "user": user, "password": password})
        restored = perform_restore(contract, target_dsn, backup_id=manifest.id, from_side=side, db=filed or database.name,
                                   no_owner=no_owner, role_map=role_map, jobs=jobs, args=args)
        result.restore = restored.to_dict()
    except BaseException:
        log.error("new instance %s is kept in %s: `restore --list-restored` lists it, `restore --cleanup %s "
                  "--from-region %s --yes` removes it", name, contract.regions[side], name, side)
        raise
    result.executed = True
    result.seconds = round(time.monotonic() - started, 3)
    return result

