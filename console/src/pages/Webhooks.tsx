/**
 * Webhook endpoints of the current mode: create one (its signing secret shown once), send a
 * test event, see its deliveries (status, attempts, last answer) and retry one, rotate the
 * secret (the old one signs too for a grace period), disable or enable it.
 */
import { useEffect, useState } from "preact/hooks";
import { api, unwrap } from "../api/client.ts";
import { type components, webhookEventTypeValues } from "../api/schema.gen.ts";
import { mode } from "../ui/state.ts";
import {
  ActionForm,
  Checkboxes,
  Confirm,
  ErrorNote,
  Field,
  ShowOnce,
  Table,
  useAction,
  when,
} from "../ui/parts.tsx";

type Endpoint = components["schemas"]["Webhook"];
type Delivery = components["schemas"]["WebhookDelivery"];
type EventType = components["schemas"]["WebhookEventType"];
const EVENTS = webhookEventTypeValues;

export function Webhooks() {
  const [endpoints, setEndpoints] = useState<Endpoint[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [secret, setSecret] = useState<{ label: string; value: string } | null>(null);
  const [rotating, setRotating] = useState<Endpoint | null>(null);
  const [notice, setNotice] = useState("");

  const load = useAction(async () => {
    const list = await unwrap(
      api.GET("/api/webhooks", { params: { query: { mode: mode.value, limit: 100 } } }),
    );
    setEndpoints(list.data);
  });
  useEffect(() => {
    setSelected(null);
    void load.run();
  }, [mode.value]);

  const act = useAction(async (endpoint: Endpoint, action: "test" | "rotate" | "toggle") => {
    const path = { params: { path: { id: endpoint.id } } };
    setNotice("");
    if (action === "test") {
      await unwrap(api.POST("/api/webhooks/{id}/test", path));
      setNotice(`Test event sent to ${endpoint.url}`);
      setSelected(endpoint.id);
    } else if (action === "rotate") {
      setRotating(null);
      const rotated = await unwrap(
        api.POST("/api/webhooks/{id}/rotate", { ...path, body: { grace_period_seconds: 86400 } }),
      );
      setSecret({ label: `New signing secret of ${rotated.url}`, value: rotated.secret });
    } else {
      const status = endpoint.status === "enabled" ? "disabled" : "enabled";
      await unwrap(api.PATCH("/api/webhooks/{id}", { ...path, body: { status } }));
    }
    await load.run();
  });

  return (
    <>
      <h1>Webhooks ({mode.value})</h1>
      {secret && (
        <ShowOnce
          label={secret.label}
          value={secret.value}
          onDone={() => setSecret(null)}
        />
      )}
      <CreateEndpoint
        onCreated={async (created) => {
          setSecret({ label: `Signing secret of ${created.url}`, value: created.secret });
          await load.run();
        }}
      />
      <h2>Your {mode.value} endpoints</h2>
      <ErrorNote error={load.error ?? act.error} />
      <p role="status">{notice}</p>
      {endpoints === null
        ? <p>Loading…</p>
        : endpoints.length === 0
        ? <p>No {mode.value} endpoints yet.</p>
        : (
          <ul class="endpoints">
            {endpoints.map((ep) => (
              <li key={ep.id} class="card">
                <h3>
                  <code>{ep.url}</code>
                </h3>
                <p>
                  <span class={`status ${ep.status}`}>{ep.status}</span>{" "}
                  {ep.disabled_reason && <span>({ep.disabled_reason})</span>}{" "}
                  {ep.failing_since && <span>failing since {when(ep.failing_since)}</span>}
                </p>
                <p class="muted">Events: {ep.events.join(", ")}</p>
                <div class="row">
                  <button
                    type="button"
                    aria-label={`Send a test to ${ep.url}`}
                    onClick={() => void act.run(ep, "test")}
                  >
                    Send a test
                  </button>
                  <button
                    type="button"
                    class="secondary"
                    aria-label={`Deliveries of ${ep.url}`}
                    onClick={() => setSelected(ep.id)}
                  >
                    Deliveries
                  </button>
                  <button
                    type="button"
                    class="secondary"
                    aria-label={`Rotate secret of ${ep.url}`}
                    onClick={() => setRotating(ep)}
                  >
                    Rotate secret
                  </button>
                  <button
                    type="button"
                    class="secondary"
                    aria-label={`${ep.status === "enabled" ? "Disable" : "Enable"} ${ep.url}`}
                    onClick={() => void act.run(ep, "toggle")}
                  >
                    {ep.status === "enabled" ? "Disable" : "Enable"}
                  </button>
                </div>
                {selected === ep.id && <Deliveries endpoint={ep} />}
              </li>
            ))}
          </ul>
        )}
      {rotating && (
        <Confirm
          title="Rotate the signing secret?"
          confirmLabel="Rotate the secret"
          onCancel={() => setRotating(null)}
          onConfirm={() => void act.run(rotating, "rotate")}
        >
          <p>
            A new secret is made and shown once; the current one keeps signing deliveries too for 24
            hours, while you move your receiver to the new one.
          </p>
        </Confirm>
      )}
    </>
  );
}

function Deliveries({ endpoint }: { endpoint: Endpoint }) {
  const [items, setItems] = useState<Delivery[] | null>(null);
  const load = useAction(async () => {
    const list = await unwrap(api.GET("/api/webhooks/{id}/deliveries", {
      params: { path: { id: endpoint.id }, query: { limit: 50 } },
    }));
    setItems(list.data);
  });
  const retry = useAction(async (delivery: Delivery) => {
    await unwrap(api.POST("/api/webhooks/{id}/deliveries/{delivery_id}/retry", {
      params: { path: { id: endpoint.id, delivery_id: delivery.id } },
    }));
    await load.run();
  });
  useEffect(() => void load.run(), [endpoint.id, endpoint.updated_at]);
  return (
    <section aria-label={`Deliveries of ${endpoint.url}`}>
      <div class="row">
        <h4>Deliveries</h4>
        <button type="button" class="secondary" onClick={() => void load.run()}>Refresh</button>
      </div>
      <ErrorNote error={load.error ?? retry.error} />
      {items === null ? <p>Loading…</p> : items.length === 0 ? <p>No deliveries yet.</p> : (
        <Table
          caption="Deliveries"
          columns={[
            "Event",
            "Status",
            "Attempts",
            "Answer",
            "Last attempt",
            "Next attempt",
            "Actions",
          ]}
        >
          {items.map((d) => (
            <tr key={d.id}>
              <td>{d.event_type}</td>
              <td>
                <span class={`status ${d.status}`}>{d.status}</span>
              </td>
              <td>{d.attempts}</td>
              <td>
                {d.response_status ?? ""} {d.last_error ?? ""}
                {d.response_body && (
                  <details>
                    <summary>body</summary>
                    <pre>{d.response_body}</pre>
                  </details>
                )}
              </td>
              <td>{when(d.last_attempt_at)}</td>
              <td>{when(d.next_attempt_at)}</td>
              <td>
                {d.status !== "pending" && (
                  <button
                    type="button"
                    class="secondary"
                    aria-label={`Retry ${d.event_type} of ${when(d.created_at)}`}
                    onClick={() => void retry.run(d)}
                  >
                    Retry
                  </button>
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}

function CreateEndpoint(
  { onCreated }: { onCreated: (e: components["schemas"]["CreatedWebhook"]) => Promise<void> },
) {
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [events, setEvents] = useState<EventType[]>(["api_key.created", "api_key.revoked"]);
  const create = useAction(async () => {
    const created = await unwrap(api.POST("/api/webhooks", {
      body: {
        url: url.trim(),
        events,
        mode: mode.value,
        ...(description.trim() ? { description: description.trim() } : {}),
      },
    }));
    setUrl("");
    setDescription("");
    await onCreated(created);
  });
  return (
    <ActionForm
      class="card"
      aria-labelledby="create-endpoint-title"
      onSubmit={() => void create.run()}
    >
      <h2 id="create-endpoint-title">Add a {mode.value} endpoint</h2>
      <Field
        label={mode.value === "live" ? "URL (https, public host)" : "URL"}
        name="url"
        type="url"
        required
        value={url}
        onValue={setUrl}
      />
      <Field
        label="Description (optional)"
        name="description"
        value={description}
        onValue={setDescription}
      />
      <Checkboxes
        legend="Events"
        name="events"
        options={EVENTS}
        chosen={events}
        onChosen={setEvents}
      />
      <button type="submit" disabled={create.busy}>Add endpoint</button>
      <ErrorNote error={create.error} />
    </ActionForm>
  );
}
