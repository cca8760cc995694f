"""Staff roles on SQLite and PostgreSQL: EXAMDESK_ADMIN_IDS are admins, admins grant and
revoke (audited, the member told once per grant), a revocation counts at once, nobody else
may change roles, configured admins keep admin, broadcasts need the admin role."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.domain.roles import Role, allows, allows_any, parse_role
from bot.services import Services, build_services
from bot.services.errors import NotStaff
from bot.services.staff import EnvironmentAdmin, NotAllowed, StaffMember
from storage.db import Database
from storage.models import AuditEntry, OutboxMessage, StaffRole
from storage.uow import UnitOfWork
from tests.factories import Clock, make_candidates

ADMIN = 90001
MEMBER = 4242
OTHER = 4343


def services(database: Database, clock: Clock | None = None) -> Services:
    return build_services(database, clock or Clock(), staff_ids=frozenset({ADMIN}))


async def audit_rows(database: Database) -> list[tuple[str, str, str, str | None, str | None]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = (
            await uow.session.scalars(
                select(AuditEntry).where(AuditEntry.entity == "staff").order_by(AuditEntry.id)
            )
        ).all()
        return [(r.actor, r.entity_id, r.action, r.from_state, r.to_state) for r in rows]


async def outbox_rows(database: Database) -> list[tuple[int, dict]]:
    async with UnitOfWork(database.sessions) as uow:
        rows = (await uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        return [(r.chat_id, r.payload) for r in rows]


def test_parse_role_takes_a_known_name_only() -> None:
    assert [parse_role(t) for t in ("finance", " Admin ", "boss", "")] == [
        Role.FINANCE,
        Role.ADMIN,
        None,
        None,
    ]


def test_admin_allows_everything_others_only_their_role() -> None:
    assert (
        allows({Role.ADMIN}, Role.CHECKIN),
        allows({Role.FINANCE}, Role.FINANCE),
        allows({Role.FINANCE}, Role.REVIEWER),
        allows_any({Role.REVIEWER}, (Role.FINANCE, Role.REVIEWER)),
        allows_any({Role.CHECKIN}, (Role.FINANCE, Role.REVIEWER)),
    ) == (True, True, False, True, False)


async def test_configured_admin_is_admin_and_nobody_else_is_staff(database: Database) -> None:
    staff = services(database).staff
    assert (
        await staff.roles_of(ADMIN),
        await staff.roles_of(MEMBER),
        await staff.directory(),
    ) == (frozenset({Role.ADMIN}), frozenset(), {ADMIN: frozenset({Role.ADMIN})})


async def test_grant_adds_the_role_audits_and_tells_the_member_once(database: Database) -> None:
    await make_candidates(database, [MEMBER])
    staff = services(database).staff

    first = await staff.grant(ADMIN, MEMBER, Role.FINANCE)
    second = await staff.grant(ADMIN, MEMBER, Role.FINANCE)

    assert (first, second) == (True, False)
    assert await staff.roles_of(MEMBER) == frozenset({Role.FINANCE})
    assert await audit_rows(database) == [
        (f"tg:{ADMIN}", str(MEMBER), "role_granted", None, "finance")
    ]
    assert await outbox_rows(database) == [
        (MEMBER, {"template": "staff_role_granted", "params": {"role": "finance"}})
    ]


async def test_grant_to_someone_without_a_chat_grants_without_a_message(
    database: Database,
) -> None:
    staff = services(database).staff
    assert await staff.grant(ADMIN, MEMBER, Role.CHECKIN) is True
    assert (await staff.roles_of(MEMBER), await outbox_rows(database)) == (
        frozenset({Role.CHECKIN}),
        [],
    )


async def test_grant_keeps_the_name_the_member_gave_telegram(database: Database) -> None:
    await make_candidates(database, [MEMBER])
    staff = services(database).staff
    await staff.grant(ADMIN, MEMBER, Role.RESULTS)
    await staff.grant(ADMIN, OTHER, Role.REVIEWER)
    assert await staff.members() == [
        StaffMember(ADMIN, "", frozenset({Role.ADMIN}), True),
        StaffMember(MEMBER, f"C{MEMBER}", frozenset({Role.RESULTS}), False),
        StaffMember(OTHER, "", frozenset({Role.REVIEWER}), False),
    ]


async def test_revocation_counts_at_once(database: Database) -> None:
    staff = services(database).staff
    await staff.grant(ADMIN, MEMBER, Role.REVIEWER)
    await staff.require(MEMBER, Role.REVIEWER)

    assert await staff.revoke(ADMIN, MEMBER, Role.REVIEWER) is True
    with pytest.raises(NotAllowed) as refused:
        await staff.require(MEMBER, Role.REVIEWER)
    assert refused.value.roles == (Role.REVIEWER,)
    assert await staff.revoke(ADMIN, MEMBER, Role.REVIEWER) is False
    assert await staff.directory() == {ADMIN: frozenset({Role.ADMIN})}
    assert [a[2:] for a in await audit_rows(database)] == [
        ("role_granted", None, "reviewer"),
        ("role_revoked", "reviewer", None),
    ]


async def test_require_takes_any_of_several_roles_and_names_them(database: Database) -> None:
    staff = services(database).staff
    await staff.grant(ADMIN, MEMBER, Role.REVIEWER)
    assert await staff.require(MEMBER, Role.FINANCE, Role.REVIEWER) == {Role.REVIEWER}
    with pytest.raises(NotAllowed) as refused:
        await staff.require(OTHER, Role.FINANCE, Role.REVIEWER)
    assert refused.value.roles == (Role.FINANCE, Role.REVIEWER)


@pytest.mark.parametrize("actor", [MEMBER, OTHER])
async def test_only_an_admin_grants_or_revokes(database: Database, actor: int) -> None:
    staff = services(database).staff
    await staff.grant(ADMIN, MEMBER, Role.FINANCE)  # staff, but not an admin
    with pytest.raises(NotAllowed):
        await staff.grant(actor, actor, Role.ADMIN)
    with pytest.raises(NotAllowed):
        await staff.revoke(actor, MEMBER, Role.FINANCE)
    assert (await staff.roles_of(actor), await staff.roles_of(MEMBER)) == (
        frozenset({Role.FINANCE}) if actor == MEMBER else frozenset(),
        frozenset({Role.FINANCE}),
    )


async def test_a_granted_admin_may_grant_but_configured_admins_keep_admin(
    database: Database,
) -> None:
    staff = services(database).staff
    await staff.grant(ADMIN, MEMBER, Role.ADMIN)
    assert await staff.grant(MEMBER, OTHER, Role.CHECKIN) is True
    with pytest.raises(EnvironmentAdmin):
        await staff.revoke(MEMBER, ADMIN, Role.ADMIN)
    assert await staff.revoke(ADMIN, MEMBER, Role.ADMIN) is True
    assert await staff.directory() == {
        ADMIN: frozenset({Role.ADMIN}),
        OTHER: frozenset({Role.CHECKIN}),
    }


async def test_a_stored_role_this_version_does_not_know_is_ignored(database: Database) -> None:
    async with UnitOfWork(database.sessions) as uow:
        uow.session.add(StaffRole(telegram_id=MEMBER, role="janitor", name="", granted_by="x"))
        await uow.commit()
    staff = services(database).staff
    assert (await staff.roles_of(MEMBER), MEMBER in await staff.directory()) == (
        frozenset(),
        False,
    )


async def test_broadcasts_need_the_admin_role(database: Database) -> None:
    await make_candidates(database, [MEMBER, OTHER])
    all_services = services(database)
    await all_services.staff.grant(ADMIN, MEMBER, Role.ADMIN)
    await all_services.staff.grant(ADMIN, OTHER, Role.FINANCE)

    draft = await all_services.broadcasts.start(MEMBER, MEMBER, "en")
    with pytest.raises(NotStaff):
        await all_services.broadcasts.start(OTHER, OTHER, "en")
    assert draft.step == "content"
