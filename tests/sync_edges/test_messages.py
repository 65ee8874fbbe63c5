"""Edge cases of the sync's message (facade/sync/messages.py) against SQS's rules for
SendMessageBatch entries."""

from __future__ import annotations

import re

import pytest

from facade.sync.messages import Change

# SendMessage, MessageGroupId: "The length of MessageGroupId is 128 characters. Valid
# values: alphanumeric characters and punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~)."
GROUP_ID = re.compile(r"^[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}$")


@pytest.mark.parametrize(
    "object_id",
    ["côte-d-ivoire", "summer sale", "caf\u00e9", "x" * 200],
)
def test_every_entity_gets_a_message_group_id_sqs_accepts(object_id: str) -> None:
    """The toolkit is for any Django monolith, whose models may have string primary keys
    (a slug, a natural key, a country name). The message group is the entity's label and
    id as they are, cut at 128 characters: a space or a non-ASCII letter makes SQS refuse
    the entry, and the relay parks every change of that entity for ever (sync verify
    then shows it drifted, and re-emitting cannot help). Ids longer than 128 characters
    that share a prefix also share a group. The group id must be an encoding of the
    entity that SQS accepts and that stays one-to-one (e.g. the label plus a hash of the
    id when the id is not plain)."""
    change = Change(
        stream="tags", aggregate="tags.Tag", id=object_id, kind="upsert",
        data={"name": object_id}, version=1, origin="monolith", event="e1",
    )  # fmt: skip
    group = change.entry("0")["MessageGroupId"]
    assert GROUP_ID.match(group), f"SQS refuses MessageGroupId {group!r}"
    other = Change(
        stream="tags", aggregate="tags.Tag", id=object_id + "-2", kind="upsert",
        data={"name": object_id}, version=1, origin="monolith", event="e2",
    )  # fmt: skip
    assert other.group_id != change.group_id, "two entities share a message group"
