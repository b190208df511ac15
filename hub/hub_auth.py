"""Who may log in to mmkit's hub: the settings hub/jupyterhub_config.py applies (hub/README.md, "Who can log in").

Two modes, chosen by ``MMKIT_HUB_AUTH``:

``shared`` (the default: a **workshop** hub, not for graded work)
    JupyterHub's SharedPasswordAuthenticator: one class password.  The password says "in this
    class", not *which* student: anyone with it can log in under a classmate's name.  With an
    allow-list (``MMKIT_HUB_USERS=alice,bob`` or ``MMKIT_HUB_USERS_FILE=names.txt``, one name a
    line, ``#`` comments) only those names get in, so a mistyped name is refused instead of
    silently getting a new, empty account; without one any name is accepted.

``oauth`` (graded use: each student proves who they are)
    oauthenticator's GitHubOAuthenticator (``MMKIT_HUB_OAUTH_PROVIDER=github``, the default) or
    GenericOAuthenticator (``generic``: your university's OpenID Connect / OAuth2 server, e.g.
    Keycloak, Azure AD, Google).  Needs ``MMKIT_HUB_OAUTH_CLIENT_ID``, ``..._CLIENT_SECRET`` and
    ``..._CALLBACK_URL`` (``https://<host>/hub/oauth_callback``); generic also
    ``..._AUTHORIZE_URL``, ``..._TOKEN_URL``, ``..._USERDATA_URL`` and optionally
    ``..._USERNAME_CLAIM`` (default ``preferred_username``).  Who is let in must be said:
    ``MMKIT_HUB_USERS``/``MMKIT_HUB_USERS_FILE`` (the course list: these names are then the
    nbgrader student ids), ``MMKIT_HUB_OAUTH_ORGS`` (GitHub organisations or
    ``org:team``), or explicitly ``MMKIT_HUB_OAUTH_ALLOW_ALL=1`` (anyone the provider knows).

:func:`settings` turns the environment into ``{"Class": {"trait": value}}`` or raises
:class:`AuthConfigError` naming what is missing; it needs no network and no hub.
"""

import os
import pathlib

MODES = ("shared", "oauth")
PROVIDERS = {"github": "oauthenticator.github.GitHubOAuthenticator",
             "generic": "oauthenticator.generic.GenericOAuthenticator"}
ADMIN = "lecturer"

WORKSHOP_BANNER = ("<strong>mmkit WORKSHOP hub</strong>: one class password, so anyone in the class can log in "
                   "under any name on the list. Not for graded work.")


class AuthConfigError(SystemExit):
    """The hub's login settings are incomplete or contradictory (the message says what to set)."""

    def __init__(self, message):
        super().__init__(f"mmkit hub: {message} (see hub/README.md, 'Who can log in')")


def allowed_users(env=os.environ):
    """The allow-list from MMKIT_HUB_USERS and/or MMKIT_HUB_USERS_FILE, lower-cased as JupyterHub
    normalises names; None when neither is set."""
    names, given = [], False
    if env.get("MMKIT_HUB_USERS", "").strip():
        given = True
        names += env["MMKIT_HUB_USERS"].replace("\n", ",").split(",")
    path = env.get("MMKIT_HUB_USERS_FILE")
    if path:
        given = True
        try:
            text = pathlib.Path(path).read_text()
        except OSError as e:
            raise AuthConfigError(f"MMKIT_HUB_USERS_FILE={path}: cannot read it ({e.strerror})") from None
        names += [line.split("#", 1)[0] for line in text.splitlines()]
    if not given:
        return None
    names = {n.strip().lower() for n in names if n.strip()}
    if not names:
        raise AuthConfigError("the allow-list (MMKIT_HUB_USERS / MMKIT_HUB_USERS_FILE) names nobody")
    bad = sorted(n for n in names if "/" in n or n.startswith(".") or any(ch.isspace() for ch in n))
    if bad:
        raise AuthConfigError(f"not usable as hub user names: {', '.join(bad)}")
    return names


def mode(env=os.environ):
    m = env.get("MMKIT_HUB_AUTH", "shared").strip().lower() or "shared"
    if m not in MODES:
        raise AuthConfigError(f"MMKIT_HUB_AUTH={m!r}: use one of {', '.join(MODES)}")
    return m


def settings(env=os.environ):
    """JupyterHub configuration for the login mode the environment asks for.

    Returns ``{"JupyterHub": {...}, "Authenticator": {...}, "<AuthenticatorClass>": {...}}``:
    configurable class name -> trait -> value."""
    m = mode(env)
    users = allowed_users(env)
    if m == "shared":
        password = env.get("MMKIT_HUB_PASSWORD")
        if not password:
            raise AuthConfigError("MMKIT_HUB_PASSWORD is not set (the class password of a workshop hub)")
        auth = {"allow_all": users is None}
        shared = {"user_password": password}
        if users is not None:
            auth["allowed_users"] = set(users)
        if env.get("MMKIT_HUB_ADMIN_PASSWORD"):
            shared["admin_password"] = env["MMKIT_HUB_ADMIN_PASSWORD"]
            auth["admin_users"] = {ADMIN}
            if users is not None:
                auth["allowed_users"].add(ADMIN)
        return {"JupyterHub": {"authenticator_class": "shared-password"},
                "Authenticator": auth, "SharedPasswordAuthenticator": shared}

    provider = env.get("MMKIT_HUB_OAUTH_PROVIDER", "github").strip().lower()
    if provider not in PROVIDERS:
        raise AuthConfigError(f"MMKIT_HUB_OAUTH_PROVIDER={provider!r}: use one of {', '.join(PROVIDERS)}")
    need = ["MMKIT_HUB_OAUTH_CLIENT_ID", "MMKIT_HUB_OAUTH_CLIENT_SECRET", "MMKIT_HUB_OAUTH_CALLBACK_URL"]
    if provider == "generic":
        need += ["MMKIT_HUB_OAUTH_AUTHORIZE_URL", "MMKIT_HUB_OAUTH_TOKEN_URL", "MMKIT_HUB_OAUTH_USERDATA_URL"]
    missing = [n for n in need if not env.get(n, "").strip()]
    if missing:
        raise AuthConfigError(f"MMKIT_HUB_AUTH=oauth ({provider}) needs {', '.join(missing)}")
    callback = env["MMKIT_HUB_OAUTH_CALLBACK_URL"].strip()
    if not callback.endswith("/hub/oauth_callback"):
        raise AuthConfigError(f"MMKIT_HUB_OAUTH_CALLBACK_URL={callback}: must be the hub's "
                              "https://<host>/hub/oauth_callback, as registered with the provider")
    if not callback.startswith("https://") and not callback.startswith("http://127.0.0.1"):
        raise AuthConfigError(f"MMKIT_HUB_OAUTH_CALLBACK_URL={callback}: use https (a TLS reverse proxy in front)")
    orgs = {o.strip() for o in env.get("MMKIT_HUB_OAUTH_ORGS", "").split(",") if o.strip()}
    allow_all = env.get("MMKIT_HUB_OAUTH_ALLOW_ALL", "") == "1"
    if orgs and provider != "github":
        raise AuthConfigError("MMKIT_HUB_OAUTH_ORGS is for GitHub; with a generic provider use MMKIT_HUB_USERS")
    if users is None and not orgs and not allow_all:
        raise AuthConfigError("MMKIT_HUB_AUTH=oauth: say who may log in: MMKIT_HUB_USERS / MMKIT_HUB_USERS_FILE "
                              "(the course list), MMKIT_HUB_OAUTH_ORGS (GitHub), or MMKIT_HUB_OAUTH_ALLOW_ALL=1")
    cls = PROVIDERS[provider]
    short = cls.rsplit(".", 1)[1]
    oauth = {"client_id": env["MMKIT_HUB_OAUTH_CLIENT_ID"].strip(),
             "client_secret": env["MMKIT_HUB_OAUTH_CLIENT_SECRET"].strip(),
             "oauth_callback_url": callback, "allow_all": allow_all}
    if users is not None:
        oauth["allowed_users"] = set(users)
    if orgs:
        oauth["allowed_organizations"] = orgs
    if env.get("MMKIT_HUB_ADMINS", "").strip():
        oauth["admin_users"] = {a.strip().lower() for a in env["MMKIT_HUB_ADMINS"].split(",") if a.strip()}
    if provider == "generic":
        oauth.update(authorize_url=env["MMKIT_HUB_OAUTH_AUTHORIZE_URL"].strip(),
                     token_url=env["MMKIT_HUB_OAUTH_TOKEN_URL"].strip(),
                     userdata_url=env["MMKIT_HUB_OAUTH_USERDATA_URL"].strip(),
                     username_claim=env.get("MMKIT_HUB_OAUTH_USERNAME_CLAIM", "preferred_username").strip(),
                     scope=env.get("MMKIT_HUB_OAUTH_SCOPE", "openid profile email").split(),
                     login_service=env.get("MMKIT_HUB_OAUTH_LOGIN_SERVICE", "your university"))
    return {"JupyterHub": {"authenticator_class": cls}, short: oauth}


def authenticator_class(conf):
    """The authenticator class the settings name (imported: fails clearly if the package is missing)."""
    import importlib
    name = conf["JupyterHub"]["authenticator_class"]
    if name == "shared-password":
        from jupyterhub.authenticators.shared import SharedPasswordAuthenticator
        return SharedPasswordAuthenticator
    module, cls = name.rsplit(".", 1)
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise AuthConfigError(f"{name} needs the oauthenticator package (pip install -e '.[hub]' "
                              f"or pip install oauthenticator): {e}") from None


def describe(env=os.environ):
    """One line for the hub's startup message: who can log in, and whether marks can rest on it."""
    m, users = mode(env), allowed_users(env)
    if m == "shared":
        who = (f"the {len(users)} names of the allow-list" if users is not None else "ANY name")
        return (f"WORKSHOP hub: {who} with the class password; anyone who knows it can act as any "
                "of them, so this is not for graded work (MMKIT_HUB_AUTH=oauth is)")
    return f"OAuth login ({env.get('MMKIT_HUB_OAUTH_PROVIDER', 'github')}): each student proves who they are"
