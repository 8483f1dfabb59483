"""The metadata REST API shared by every definition kind, under `/api/v1/meta/` (MD-2..MD-4).

Kind-agnostic: error answers, the designer permission, version lists, diffs, publish and roll
back bodies, and app bundles. A kind's app serves its own designs and adds its endpoints on
these pieces (`dynamic_models.api.meta` for entities); what a kind contributes (validation,
preview, publish, its body's serializer, its permissions) it declares once on its DefinitionKind.
"""
