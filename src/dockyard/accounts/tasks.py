"""The accounts' job handlers, registered with the job runner in every process that runs jobs: ``invites.send``
mails an organization invite's link to its invitee (``dockyard.accounts.invites``) through the SMTP server
(``dockyard.accounts.mail``). An invite deleted, used or expired before the job runs is not mailed; a server that
refuses or cannot be reached is retried with backoff until the invite expires."""

from __future__ import annotations

from dockyard.accounts.invites import SEND_JOB, Invitation, invite_link, mail_order, mark_sent
from dockyard.accounts.mail import MailError, send_mail
from dockyard.auth.secrets import SecretBox
from dockyard.jobs.handlers import Fail, Handler, JobContext, Retry
from dockyard.jobs.registry import JobEnvironment, register


def invite_text(invitation: Invitation, link: str) -> tuple[str, str]:
    """The subject and body of an invite's e-mail."""
    where = f"the organization {invitation.org}"
    if invitation.team:
        where += f" (team {invitation.team})"
    subject = f"{invitation.inviter or 'Someone'} invited you to join {invitation.org} on Dockyard"
    body = (
        f"{invitation.inviter or 'An owner'} invited you to join {where} as {invitation.role}.\n\n"
        f"Accept or decline the invitation here (sign in first):\n\n    {link}\n\n"
        f"The invitation expires at {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n"
        "If you did not expect it, ignore this message.\n"
    )
    return subject, body


@register(SEND_JOB)
def send_invite(env: JobEnvironment) -> Handler:
    box = SecretBox(env.settings.secret_key)

    async def handle(job: JobContext) -> None:
        invite_id = str(job.payload["invite_id"])
        order = await mail_order(env.db, box, invite_id)
        if order is None:
            return  # cancelled, used or expired meanwhile: nothing to send
        if order.to is None:
            raise Fail("the invited user has no e-mail address")
        if not env.settings.smtp_host:
            raise Fail("no SMTP server is configured (smtp_host)")
        subject, body = invite_text(order.invitation, invite_link(str(job.payload["base_url"]), order.token))
        await job.heartbeat()  # another runner took the job over: do not mail twice
        try:
            await send_mail(env.settings, order.to, subject, body)
        except MailError as exc:
            raise Retry(None, str(exc)) from exc
        await mark_sent(env.db, invite_id)

    return handle
