"""The Exchange (EWS) account both the EWS source and the EWS transport use, and EWS errors in words."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mailflow.connection.oauth import explain_token_error
from mailflow.connectors import ConnectorEnv
from mailflow.errors import ConfigError


def account_from_config(options: Mapping[str, Any], env: ConnectorEnv) -> Callable[[], Any]:
    """A function that builds the exchangelib Account (lazily: it talks to the server)."""
    where = env.where
    mailbox = options.get("mailbox")
    if not mailbox:
        raise ConfigError(f"{where}: mailbox: required (the primary SMTP address)")
    auth = str(options.get("auth", "ntlm"))
    server = options.get("server")
    autodiscover = bool(options.get("autodiscover", False))
    if bool(server) == autodiscover:
        raise ConfigError(f"{where}: give either 'server' or 'autodiscover = true'")
    if auth == "ntlm":
        if not options.get("username"):
            raise ConfigError(f"{where}: username: required with auth = \"ntlm\" (DOMAIN\\user)")
        password = env.secret(options, "password")
        client_secret = None
    elif auth == "oauth2":
        for key in ("tenant_id", "client_id"):
            if not options.get(key):
                raise ConfigError(f"{where}: {key}: required with auth = \"oauth2\"")
        client_secret = env.secret(options, "client_secret")
        password = None
    else:
        raise ConfigError(f"{where}: auth: {auth!r} is not one of ntlm, oauth2")

    def build() -> Any:
        from exchangelib import (
            DELEGATE,
            IMPERSONATION,
            NTLM,
            OAUTH2,
            Account,
            Configuration,
            Credentials,
            Identity,
            OAuth2Credentials,
        )

        if auth == "ntlm":
            creds: Any = Credentials(str(options["username"]), password)
            access, auth_type = DELEGATE, NTLM
        else:
            creds = OAuth2Credentials(client_id=str(options["client_id"]),
                                      client_secret=client_secret,
                                      tenant_id=str(options["tenant_id"]),
                                      identity=Identity(primary_smtp_address=str(mailbox)))
            access, auth_type = IMPERSONATION, OAUTH2
        if autodiscover:
            return Account(str(mailbox), credentials=creds, autodiscover=True,
                           access_type=access)
        config = Configuration(server=str(server), credentials=creds, auth_type=auth_type)
        return Account(str(mailbox), config=config, autodiscover=False, access_type=access)

    return build


_AUTH_ERRORS = {"UnauthorizedError", "ErrorAccessDenied", "ErrorNonExistentMailbox",
                "ErrorImpersonateUserDenied", "ErrorImpersonationDenied"}


def _token_refusal(exc: BaseException) -> dict[str, Any] | None:
    """Entra ID's answer when it refused exchangelib's token request (an oauthlib error)."""
    from oauthlib.oauth2 import OAuth2Error

    if isinstance(exc, OAuth2Error):
        return {"error": exc.error, "error_description": exc.description or ""}
    return None


def is_ews_auth_failure(exc: BaseException) -> bool:
    """Retrying will not help until someone fixes the credentials or permissions."""
    return type(exc).__name__ in _AUTH_ERRORS or _token_refusal(exc) is not None


def explain_ews_error(exc: BaseException, mailbox: str) -> str:
    name = type(exc).__name__
    refusal = _token_refusal(exc)
    if refusal is not None:
        return f"Entra ID gave no token for EWS: {explain_token_error(refusal)}"
    if name == "ErrorNonExistentMailbox":
        return f"Exchange has no mailbox {mailbox}: check 'mailbox' (the primary SMTP address)"
    if name in ("ErrorImpersonateUserDenied", "ErrorImpersonationDenied"):
        return (f"the account may not open {mailbox} ({name}): give the app full_access_as_app "
                f"(OAuth2) or the service account ApplicationImpersonation or Full Access")
    if name in _AUTH_ERRORS:
        return (f"EWS refused access to {mailbox} ({name}): check the credentials; for OAuth2 "
                f"the app needs the full_access_as_app permission with admin consent (and in "
                f"Exchange Online, the tenant must still allow EWS)")
    if name in ("ErrorServerBusy", "ErrorTooManyObjectsOpened") or "ErrorServerBusy" in str(exc):
        return f"Exchange is throttling this client ({name}): it is retried later"
    if name in ("AutoDiscoverFailed",):
        return f"autodiscover found no EWS endpoint for {mailbox}: set 'server' instead"
    if name in ("TransportError", "RateLimitError"):
        return f"cannot reach the EWS server ({exc})"
    return f"{name}: {str(exc)[:200]}"
