"""Sign-up with double opt-in: the public form, the confirmation email, the confirm link.

The form answers with the same page whatever the address's state (new, pending,
subscribed, suppressed), so it never reveals who is subscribed: byte for byte, and in the
same time, because the answer is sent before the store is looked at or the provider
called (that work runs in the background, see :mod:`~newsletter.web.background`).
Requests are limited per client IP (429 above the limit) and per address (silently: no
more emails to it). Foreign origins are refused by :class:`~newsletter.web.hostile.
OriginCheck`. The confirm link shows a button rather than confirming on GET: mail
scanners open links, and a subscription they confirmed would not be the person's consent.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from newsletter.audience.selfservice import (
    SignupRequest,
    confirm_signup,
    joinable_lists,
    request_signup,
)
from newsletter.audience.subscribers import normalize_email
from newsletter.errors import NewsletterError, SubscriberError
from newsletter.models import OutgoingMessage, ResultStatus, Subscriber, SubscriberStatus
from newsletter.textclean import clean_text
from newsletter.web.common import (
    Form,
    bad_request,
    csrf_failed,
    error_page,
    first,
    invalid_link,
    read_form,
    read_posted,
    token_subscriber,
)
from newsletter.web.context import WebContext, context_of
from newsletter.web.csrf import FIELD
from newsletter.web.pages import N_

log = logging.getLogger("newsletter.web")

#: the consent sentence next to the checkbox; its text (as shown) and the configured
#: ``web.consent_version`` are stored with every sign-up
CONSENT = N_(
    "I agree that %(organisation)s stores my email address, name and choices to send me "
    "its newsletter. I can unsubscribe at any time with the link in every email."
)


def _consent_text(ctx: WebContext, page_locale: str) -> str:
    org = ctx.settings.organisation.name_for(page_locale)
    return ctx.pages.gettext(page_locale, CONSENT, organisation=org)


def _form_page(
    request: Request,
    locale: str,
    *,
    status: int = 200,
    errors: list[str] | None = None,
    values: Form | None = None,
) -> Response:
    ctx = context_of(request)
    labels = {lst.name: lst.description_for(locale) for lst in ctx.settings.lists}
    values = values or {}
    return ctx.pages.page(
        request,
        locale,
        "web/subscribe.html",
        status=status,
        action=ctx.href("/subscribe"),
        csrf=ctx.csrf.issue("subscribe", 0),
        csrf_field=FIELD,
        consent_text=_consent_text(ctx, locale),
        locales=ctx.settings.locales.available,
        lists=[(name, labels[name]) for name in joinable_lists(ctx.settings)],
        errors=[ctx.pages.gettext(locale, e) for e in errors or []],
        email=first(values, "email"),
        name=first(values, "name"),
        chosen_locale=first(values, "locale", locale),
        chosen_lists=values.get("lists", []),
    )


async def form(request: Request) -> Response:
    """GET: the sign-up form in the visitor's language."""
    ctx = context_of(request)
    return _form_page(request, ctx.pages.negotiate(request))


def _errors(ctx: WebContext, values: Form) -> list[str]:
    errors = []
    try:
        normalize_email(first(values, "email"))
    except SubscriberError:
        errors.append(N_("Please enter a valid email address."))
    if first(values, "locale") not in ctx.settings.locales.available:
        errors.append(N_("Please choose a language."))
    lists = values.get("lists", [])
    joinable = joinable_lists(ctx.settings)
    if (joinable and not lists) or not set(lists) <= set(joinable):
        errors.append(N_("Please choose at least one list."))
    if first(values, "consent") != "yes":
        errors.append(N_("Please tick the consent box."))
    if len(first(values, "name")) > 200:
        errors.append(N_("The name is too long."))
    return errors


async def submit(request: Request) -> Response:
    """POST: validate, rate-limit, then answer; the request is recorded and the
    confirmation sent afterwards (:func:`process_signup`), for every address alike."""
    ctx = context_of(request)
    locale = ctx.pages.negotiate(request)
    values = await read_form(request)
    if values is None:
        return bad_request(request, "not a form", locale)
    page_locale = first(values, "page_locale")
    if page_locale in ctx.settings.locales.available:
        locale = page_locale
    if not ctx.csrf.check(first(values, FIELD), "subscribe", 0):
        return csrf_failed(request, locale)
    web = ctx.settings.web
    ip = request.client.host if request.client else "unknown"
    if not ctx.limiter.hit(f"ip:{ip}", web.subscribe_limit_per_ip, web.subscribe_limit_window):
        log.warning("sign-up rate limit reached for %s", ip)
        retry = {"Retry-After": str(web.subscribe_limit_window)}
        return error_page(request, 429, locale, headers=retry)
    errors = _errors(ctx, values)
    if errors:
        return _form_page(request, locale, status=400, errors=errors, values=values)
    email = normalize_email(first(values, "email"))
    key = f"address:{email}"
    if ctx.limiter.hit(key, web.subscribe_limit_per_address, web.subscribe_limit_window):
        req = SignupRequest(
            email=email,
            name=clean_text(first(values, "name")),
            locale=first(values, "locale"),
            lists=tuple(values.get("lists", [])),
            source=f"web:{ctx.href('/subscribe')}",
            consent_text=_consent_text(ctx, locale),
            form_version=web.consent_version,
            ip=ip if web.record_consent_ip else None,
        )
        now = ctx.clock()
        ctx.background.submit("sign-up", lambda: process_signup(ctx, req, now))
    else:
        log.info("sign-up limit per address reached; no email sent")
    return ctx.pages.message(
        request,
        locale,
        N_("Check your inbox"),
        [
            N_(
                "If the address can receive our newsletter, we have sent a message to it. "
                "Follow the link in that message to confirm your subscription."
            )
        ],
    )


def confirmation_message(
    ctx: WebContext, sub: Subscriber, locale: str, name: str
) -> OutgoingMessage:
    """The localized confirmation email for a sign-up request."""
    org = ctx.settings.organisation
    token = ctx.signer.sign("confirm", sub.id)
    days = ctx.settings.web.confirm_max_age_days
    values = {
        "name": name,
        "confirm_url": ctx.link(f"/confirm/{token}"),
        "days": days,
        "subject": ctx.pages.gettext(
            locale,
            N_("Please confirm your subscription to %(organisation)s"),
            organisation=org.name_for(locale),
        ),
    }
    domain = org.from_email.rpartition("@")[2]
    nonce = secrets.token_hex(8)
    return OutgoingMessage(
        delivery_id=0,
        to_email=sub.email,
        to_name=name,
        from_email=org.from_email,
        from_name=org.name_for(locale),
        subject=str(values["subject"]),
        html=ctx.pages.render(locale, "confirm-email.html", **values),
        text=ctx.pages.render(locale, "confirm-email.txt", **values),
        locale=locale,
        message_id=f"<nl-confirm.{sub.id}.{nonce}@{domain}>",
        idempotency_key=f"nl-confirm-{sub.id}-{nonce}",
        metadata={"kind": "confirm", "subscriber_id": str(sub.id)},
        reply_to=org.reply_to,
    )


async def process_signup(ctx: WebContext, req: SignupRequest, now: datetime) -> None:
    """Record a sign-up request and send its confirmation email (for an address that may
    receive one); runs after the visitor was answered, so failures are only logged."""
    try:
        outcome = await run_in_threadpool(request_signup, ctx.settings, ctx.store, req, now)
    except NewsletterError as exc:
        log.error("sign-up request not recorded: %s", exc)
        return
    sub = outcome.subscriber
    if sub is None:
        return
    try:
        provider = await ctx.get_provider()
        message = confirmation_message(ctx, sub, outcome.locale, req.name)
        [result] = await provider.send_batch([message])
    except NewsletterError as exc:
        log.error("confirmation email to subscriber %d not sent: %s", sub.id, exc)
        return
    if result.status is not ResultStatus.ACCEPTED:
        log.error("confirmation email to subscriber %d refused: %s", sub.id, result.error)


def _max_age(request: Request) -> int:
    """Seconds a confirmation link stays valid."""
    return context_of(request).settings.web.confirm_max_age_days * 86400


async def confirm_page(request: Request) -> Response:
    """GET /confirm/{token}: one button that confirms; nothing changes yet."""
    sub = token_subscriber(request, "confirm", max_age=_max_age(request))
    if sub is None:
        return invalid_link(request)
    ctx = context_of(request)
    pending = ctx.store.consents.latest_pending(sub.id)
    locale = ctx.pages.negotiate(request, pending.locale if pending else sub.locale)
    if pending is None and sub.status is SubscriberStatus.ACTIVE:
        return _confirmed(request, ctx, sub, locale)
    return ctx.pages.page(
        request,
        locale,
        "web/confirm.html",
        action=ctx.href(f"/confirm/{request.path_params['token']}", request),
        csrf=ctx.csrf.issue("confirm", sub.id),
        csrf_field=FIELD,
    )


def _confirmed(request: Request, ctx: WebContext, sub: Subscriber, locale: str) -> Response:
    return ctx.pages.message(
        request,
        locale,
        N_("Subscription confirmed"),
        [N_("Thank you! You will receive the next newsletter of %(organisation)s.")],
        links=[
            (
                N_("Manage preferences"),
                ctx.href(f"/preferences/{ctx.signer.sign('preferences', sub.id)}", request),
            )
        ],
        organisation=ctx.settings.organisation.name_for(locale),
    )


async def confirm(request: Request) -> Response:
    """POST /confirm/{token}: activate the subscriber and record the consent's confirmation."""
    posted = await read_posted(request, "confirm", "confirm", max_age=_max_age(request))
    if isinstance(posted, Response):
        return posted
    ctx = context_of(request)
    sub = confirm_signup(ctx.store, posted.sub.id, source="web:confirm", now=ctx.clock())
    if sub.status is not SubscriberStatus.ACTIVE:
        return invalid_link(request)
    log.info("subscriber %d confirmed", sub.id)
    return _confirmed(request, ctx, sub, ctx.pages.negotiate(request, sub.locale))


def routes() -> list[BaseRoute]:
    """The sign-up routes."""
    return [
        Route("/subscribe", form, methods=["GET"]),
        Route("/subscribe", submit, methods=["POST"]),
        Route("/confirm/{token}", confirm_page, methods=["GET"]),
        Route("/confirm/{token}", confirm, methods=["POST"]),
    ]
