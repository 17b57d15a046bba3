"""The `sts:` section of the fleet file: the RAM roles the simulated STS lets callers
assume, the OIDC providers whose tokens it accepts, how long what it issues lives, and
which role the instance metadata service and the credentials URI hand out.

```yaml
sts:
  credential_ttl: 3600          # wall-clock seconds an issued credential is accepted
  roles:
    - name: deployer            # ARN acs:ram::<account_id>:role/deployer
      trusted_keys: [LTAI...]   # long-term access key ids that may AssumeRole it
      trusted_roles: [base]     # roles whose sessions may assume it (role chaining)
      oidc_providers: [github]  # providers whose tokens may AssumeRoleWithOIDC it
  oidc_providers:
    - name: github              # ARN acs:ram::<account_id>:oidc-provider/github
      issuer: https://token.actions.githubusercontent.com
      key: <HMAC key the tokens are signed with (HS256; real providers use RS256)>
      audience: sts.aliyuncs.com  # optional: the `aud` a token must carry
  instance_role: deployer       # what the metadata service serves (none: 404)
  uri_role: deployer            # what /_sim/credentials-uri serves (none: 404)
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from orchestrator.sim._fleet_node import Node

# An hour: what the official library asks for (DurationSeconds=3600) and STS grants.
DEFAULT_CREDENTIAL_TTL: Final = 3600.0


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """A RAM role and who may assume it."""

    name: str
    trusted_keys: frozenset[str] = frozenset()
    trusted_roles: frozenset[str] = frozenset()
    oidc_providers: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class OidcProviderSpec:
    """An OIDC identity provider: tokens are JWTs with `iss` = `issuer`, signed with
    HS256 under `key` (a simplification: real providers sign with RS256 keys)."""

    name: str
    issuer: str
    key: str = field(repr=False)
    audience: str | None = None


@dataclass(frozen=True, slots=True)
class StsSpec:
    """Roles, OIDC providers and the lifetime of what STS issues (no roles: STS refuses
    every assume with EntityNotExist.Role)."""

    credential_ttl: float = DEFAULT_CREDENTIAL_TTL
    roles: tuple[RoleSpec, ...] = ()
    oidc_providers: tuple[OidcProviderSpec, ...] = ()
    instance_role: str | None = None
    uri_role: str | None = None

    def role(self, name: str) -> RoleSpec | None:
        """The role called `name`, if declared."""
        return next((r for r in self.roles if r.name == name), None)

    def provider(self, name: str) -> OidcProviderSpec | None:
        """The OIDC provider called `name`, if declared."""
        return next((p for p in self.oidc_providers if p.name == name), None)


def parse_sts(node: Node) -> StsSpec:
    """The `sts:` section (absent: no roles, nothing served)."""
    node.only("credential_ttl", "roles", "oidc_providers", "instance_role", "uri_role")
    ttl = node.number("credential_ttl", DEFAULT_CREDENTIAL_TTL)
    if ttl <= 0:
        raise node.fail("credential_ttl", "must be > 0")
    providers = tuple(_provider(item) for item in node.items("oidc_providers"))
    roles = tuple(_role(item, {p.name for p in providers}) for item in node.items("roles"))
    names = [r.name for r in roles]
    if len(set(names)) != len(names):
        raise node.fail("roles", "role names must be unique")
    for role in roles:
        unknown = role.trusted_roles - set(names)
        if unknown:
            raise node.fail("roles", f"{role.name}: trusted_roles names no role {sorted(unknown)}")
    instance_role = node.str_("instance_role", "") or None
    uri_role = node.str_("uri_role", "") or None
    for key, name in (("instance_role", instance_role), ("uri_role", uri_role)):
        if name is not None and name not in names:
            raise node.fail(key, f"names no role declared under roles ({name!r})")
    return StsSpec(ttl, roles, providers, instance_role, uri_role)


def _role(node: Node, providers: set[str]) -> RoleSpec:
    node.only("name", "trusted_keys", "trusted_roles", "oidc_providers")
    name = node.str_("name", "")
    if not name:
        raise node.fail("name", "is required")
    oidc = frozenset(node.strings("oidc_providers"))
    if oidc - providers:
        raise node.fail("oidc_providers", f"names no declared provider {sorted(oidc - providers)}")
    return RoleSpec(
        name,
        frozenset(node.strings("trusted_keys")),
        frozenset(node.strings("trusted_roles")),
        oidc,
    )


def _provider(node: Node) -> OidcProviderSpec:
    node.only("name", "issuer", "key", "audience")
    values = {k: node.str_(k, "") for k in ("name", "issuer", "key")}
    for key, value in values.items():
        if not value:
            raise node.fail(key, "is required")
    return OidcProviderSpec(
        values["name"], values["issuer"], values["key"], node.str_("audience", "") or None
    )
