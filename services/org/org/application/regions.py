"""Sales regions (华东 › 江苏): a tree whose paths (``华东/江苏``) customers carry."""

from __future__ import annotations

from typing import Any

from org import repository
from org.application.admin import TreeAggregate
from org.domain.conflicts import sibling_name_taken
from org.domain.trees import REGION_PATH_SEPARATOR, check_move
from org.models import REGION_FIELDS, DataGrant, Region
from org.schemas import RegionInputSchema, RegionSchema, TreeQuerySchema


class Regions(TreeAggregate):
    kind = "regions"
    entity_type = "region"
    fields = REGION_FIELDS
    dumper = RegionSchema()
    input_schema = RegionInputSchema
    query_schema = TreeQuerySchema
    model = Region
    separator = REGION_PATH_SEPARATOR

    def create(self, values: dict[str, Any]) -> Region:
        self.check_free(Region.code, values["code"], None, "code")
        self.check_exist(Region, [values.get("parent_id")], "parent_id")
        self._check_sibling_name(values["name"], values.get("parent_id"), None)
        region = Region(**values, path=self.path_of(values.get("parent_id"), values["name"]))
        self.add(region)
        self.announce(region)
        return region

    def update(self, region: Region, values: dict[str, Any]) -> None:
        if "code" in values:
            self.check_free(Region.code, values["code"], region.id, "code")
        parent_id = values.get("parent_id", region.parent_id)
        if "parent_id" in values:
            self.check_exist(Region, [parent_id], "parent_id")
            check_move(
                repository.tree(self.session, Region), region.id, parent_id, "region", "sub-regions"
            )
        name = values.get("name", region.name)
        self._check_sibling_name(name, parent_id, region.id)
        reshaped = name != region.name or parent_id != region.parent_id
        watched = self.authz.effective(
            repository.users_with_grants_on(self.session, DataGrant.regions) if reshaped else ()
        )
        values["path"] = self.path_of(parent_id, name)
        if self.edit(region, values):
            repathed = self.repath(region.id)
            self.settle(watched)
            self.region_changed([region, *(r for r in repathed if r is not region)])

    def announce(self, record: Region) -> None:
        self.region_changed([record])

    def _check_sibling_name(self, name: str, parent_id: str | None, own_id: str | None) -> None:
        holder = repository.region_named(self.session, name, parent_id, own_id)
        if holder is not None:
            raise sibling_name_taken(name, holder)
