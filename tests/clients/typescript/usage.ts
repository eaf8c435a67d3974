// Type-checked by tests/clients/test_typescript.py with `tsc --strict`: the browser client's
// declarations (clients/browser/carpool.d.ts) as a page would use them.
import {
  connect,
  ProblemError,
  TransactionFailed,
  type Grommet,
  type GrommetPage,
  type Update,
  type Widget,
} from "/client.js";

export async function tour(token: string): Promise<string[]> {
  const api = connect({ token: () => token, transport: "http", batchWindowMs: 0 });
  const seen: string[] = [];

  // Plain calls made together (one POST /batch) and typed operations.
  const [one, grommet, widget, page] = await Promise.all([
    api.get("/grommets/1", { params: { include: null } }),
    api.getGrommet({ grommet_id: 2 }),
    api.getWidget({ widget_id: 1, include: "grommets" }),
    api.listGrommets(),
  ]);
  const g: Grommet = grommet;
  const w: Widget = widget;
  const p: GrommetPage = page;
  seen.push(String(one.status), one.headers["etag"] ?? "", g.name, w.name, String(p.items.length));
  const made: Grommet = await api.createGrommet({ name: "x", material: "tin", diameter_mm: 1 });
  await api.patchGrommet({ grommet_id: made.id }, { material: "steel" });
  await api.deleteGrommet({ grommet_id: made.id });

  // A transaction whose later calls refer to earlier answers.
  const tx = api.transaction({ atomic: true });
  const created = tx.post("/grommets", { json: { name: "y", material: "tin", diameter_mm: 2 } });
  tx.post("/widgets", { json: { name: "z", parts: [{ grommet_id: created.at("body", "id"), quantity: 1 }] } });
  tx.get(`/grommets/${created.ref("/body/id")}`, { headers: { "If-None-Match": created.ref("/headers/etag") } });
  try {
    const answers = await tx.commit();
    seen.push(...answers.map((answer) => String(answer.status)));
  } catch (error) {
    if (error instanceof TransactionFailed) seen.push(String(error.failed?.status));
    else if (error instanceof ProblemError) seen.push(error.type, String(error.errors.length));
    else throw error;
  }

  // Live answers.
  const stop = api.subscribe("/grommets/1", (update: Update) => {
    seen.push(`${update.status} ${update.ended} ${JSON.stringify(update.body)}`);
  }, { onEnd: (error) => seen.push(error.message) });
  stop();
  api.close();
  return seen;
}
