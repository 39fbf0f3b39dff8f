/**
 * The local mailbox: where the Auth stand-in's emails go instead of being sent, as Supabase's
 * local stack catches them (Inbucket/Mailpit). The dev server shows it at `/_mailbox/` and
 * answers `GET /_mailbox/api/messages?to=<email>` (JSON, newest first) for tests. It holds the
 * last 200 messages in memory: local only, never deployed (hosted Supabase sends real mail).
 *
 * @module
 */

/** One email as sent. */
export interface Mail {
  id: string;
  to: string;
  subject: string;
  text: string;
  /** The magic link in the mail. */
  link: string;
  /** The 6-digit code in the mail. */
  otp: string;
  sent_at: string;
}

const LIMIT = 200;

/** An in-memory mailbox, newest last. */
export class Mailbox {
  #mails: Mail[] = [];

  /** Delivers a mail. */
  send(mail: Omit<Mail, "id" | "sent_at">): void {
    this.#mails.push({ ...mail, id: crypto.randomUUID(), sent_at: new Date().toISOString() });
    if (this.#mails.length > LIMIT) this.#mails.splice(0, this.#mails.length - LIMIT);
  }

  /** The mails, newest first, optionally to one address. */
  list(to?: string): Mail[] {
    const all = [...this.#mails].reverse();
    return to === undefined ? all : all.filter((m) => m.to === to.trim().toLowerCase());
  }

  /** Answers `/_mailbox/...`: the HTML page or the JSON list. */
  serve(url: URL): Response {
    const headers = {
      "Cache-Control": "no-store",
      "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
      "Access-Control-Allow-Origin": "*",
    };
    const to = url.searchParams.get("to") ?? undefined;
    if (url.pathname === "/_mailbox/api/messages") {
      return Response.json(this.list(to), { headers });
    }
    if (url.pathname === "/_mailbox/" || url.pathname === "/_mailbox") {
      return new Response(page(this.list(to)), {
        headers: { ...headers, "Content-Type": "text/html; charset=utf-8" },
      });
    }
    return Response.json({ error: "not_found" }, { status: 404, headers });
  }
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(mails: Mail[]): string {
  const items = mails.map((m) =>
    `<article><h2>${escape(m.subject)}</h2><p>To ${escape(m.to)}, ${escape(m.sent_at)}</p>` +
    `<pre>${escape(m.text)}</pre><p><a href="${escape(m.link)}">Open the magic link</a></p>` +
    `</article>`
  ).join("\n");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Local mailbox</title>
<style>body{font:15px system-ui;max-width:50rem;margin:2rem auto}article{border-top:1px solid #ccc}</style>
</head><body><h1>Local mailbox</h1><p>Mail the local Auth stand-in sent (newest first; not kept
across restarts).</p>${items || "<p>No mail yet.</p>"}</body></html>`;
}
