/**
 * The page's style sheet (inlined by `page.ts`). One colour per outcome, the same everywhere: the
 * legend, op bars, step bars, aggregates and the detail panel's swatches.
 *
 * - done `#2f9e5b` (steps that went well are a lighter green), undone `#e0961a`, broken and failed
 *   `#d0393b`, settled by reconciliation and probed `#7b5cc4`, in flight (no outcome) grey stripes.
 * - Undo is hatched; links from an undo step to what it undoes are dashed arrows.
 *
 * @example
 * ```ts
 * const head = `<style>${STYLE}</style>`;
 * ```
 */
export const STYLE = `
:root {
  --done: #2f9e5b; --ok: #9fd8b2; --undone: #e0961a; --broken: #d0393b; --reconciled: #7b5cc4; --probed: #b7a4ee;
  --open: #a3abb5; --life: #c4ced9; --container: #3c9fb0; --gc: #8a6a33; --ink: #1d2530; --muted: #5d6875; --line: #dde3ea;
  --bg: #ffffff; --panel: #f6f8fa; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
}
* { box-sizing: border-box; }
body { margin: 0; height: 100vh; display: flex; flex-direction: column; background: var(--bg); }
header { padding: 8px 14px 6px; border-bottom: 1px solid var(--line); }
h1 { font-size: 16px; margin: 0 0 4px; }
header dl { display: flex; flex-wrap: wrap; gap: 2px 22px; margin: 0; }
header dl div { display: flex; gap: 6px; }
header dt { color: var(--muted); }
header dd { margin: 0; font-weight: 600; }
header dd.bad { color: var(--broken); }
.intro { margin: 4px 0 0; color: var(--muted); max-width: 1100px; }
.toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 14px; padding: 6px 14px; border-bottom: 1px solid var(--line); background: var(--panel); }
.toolbar form { display: flex; gap: 4px; align-items: center; margin: 0; }
.toolbar input[type=number] { width: 90px; }
.toolbar button { font: inherit; padding: 2px 8px; cursor: pointer; }
.err { color: var(--broken); }
#status { color: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; padding: 5px 14px; border-bottom: 1px solid var(--line); font-size: 12px; }
.legend .item { display: inline-flex; align-items: center; gap: 5px; }
.legend b { font-weight: 600; margin-right: -8px; }
.sw { display: inline-block; width: 22px; height: 12px; border-radius: 2px; position: relative; vertical-align: -1px; margin-right: 5px; }
.sw.k-life { height: 4px; }
.sw.mk { width: 2px; height: 14px; border-radius: 0; }
main { flex: 1; display: flex; min-height: 0; }
#labels { width: 300px; flex: none; position: relative; overflow: hidden; border-right: 1px solid var(--line); background: var(--panel); }
#labels-head { position: absolute; top: 0; left: 0; right: 0; height: 28px; z-index: 2; background: var(--panel); border-bottom: 1px solid var(--line); padding: 6px 8px; color: var(--muted); font-size: 12px; }
.lane-label { position: absolute; left: 0; right: 0; height: 30px; padding: 7px 8px 0 22px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 12px; }
.lane-label.g-workshop { padding-left: 8px; font-weight: 700; border-top: 1px solid #c9d1da; }
.lane-label.g-engine { padding-left: 8px; font-weight: 700; }
.lane-label.g-instance, .lane-label.g-layer, .lane-label.g-stash, .lane-label.g-stash-copy, .lane-label.g-container { color: #2b3642; }
#view { flex: 1; overflow: auto; position: relative; }
#inner { position: relative; }
#axis { position: sticky; top: 0; height: 28px; z-index: 5; background: #fff; border-bottom: 1px solid var(--line); }
#axis .tick { position: absolute; top: 6px; transform: translateX(-50%); font-size: 11px; color: var(--muted); }
#axis .tick::after { content: ""; position: absolute; left: 50%; top: 16px; height: 6px; border-left: 1px solid #9aa5b1; }
#rows { position: absolute; left: 0; top: 0; right: 0; }
.lane { position: absolute; left: 0; right: 0; height: 30px; }
.lane.odd { background: #fafbfc; }
.lane.g-workshop { border-top: 1px solid #c9d1da; background: #f3f6f9; }
.span { position: absolute; top: 5px; height: 20px; border-radius: 3px; cursor: pointer; overflow: hidden; white-space: nowrap; font-size: 11px; color: #fff; z-index: 2; border: 1px solid rgba(0,0,0,.18); }
.span .t { display: block; padding: 2px 4px 0; overflow: hidden; text-overflow: ellipsis; text-shadow: 0 0 2px rgba(0,0,0,.45); }
.span:hover { outline: 2px solid #1d2530; z-index: 6; }
.span.sel { outline: 3px solid #0b63ce; outline-offset: 1px; z-index: 7; }
.c-done { background: var(--done); }
.c-ok { background: var(--ok); color: #173a25; }
.c-ok .t { text-shadow: none; }
.c-undone { background: var(--undone); }
.c-broken, .c-failed, .c-missing { background: var(--broken); }
.c-reconciled, .c-reconcile { background: var(--reconciled); }
.c-probed { background: var(--probed); color: #2a1d57; }
.c-probed .t { text-shadow: none; }
.c-open { background: repeating-linear-gradient(135deg, var(--open) 0 6px, #c9cfd6 6px 12px); }
.c-kept, .c-rm { background: var(--container); }
.c-rm { opacity: .8; }
.c-exists, .c-gone { background: var(--life); }
.c-orphan { background: var(--gc); }
.c-settled { background: #6d7c8c; }
.span.k-op { top: 4px; height: 22px; font-size: 12px; }
.span.k-step { top: 6px; height: 18px; }
.span.k-life { top: 25px; height: 3px; border: 0; border-radius: 1px; z-index: 1; }
.span.k-point { top: 4px; height: 22px; border-radius: 8px; }
.span.k-band { top: 3px; height: 24px; opacity: .35; }
.span.k-undo, .p-undo, .sw.k-undo { background-image: repeating-linear-gradient(45deg, rgba(255,255,255,.55) 0 3px, transparent 3px 7px); }
.span.k-undo { top: 4px; height: 22px; background-color: transparent; border: 1px dashed rgba(0,0,0,.55); z-index: 8; }
.p-cleanup { border-style: dotted; }
.span.agg { border-radius: 2px; border: 0; }
.mark { position: absolute; top: 0; width: 0; border-left: 1px dashed var(--reconciled); z-index: 4; cursor: pointer; opacity: .35; }
.mark.busy { opacity: .8; }
.mark.sel { opacity: 1; border-left-width: 2px; }
.mark.m-gc { border-left: 1px dotted var(--gc); opacity: .8; }
.mark.m-damage { border-left: 3px solid var(--broken); opacity: 1; }
.mark .flag { position: absolute; left: -8px; width: 16px; height: 22px; line-height: 22px; text-align: center; font-size: 12px; font-weight: 700; background: #fff; border: 1px solid currentColor; border-radius: 3px; color: var(--reconciled); }
.mark.m-gc .flag { color: var(--gc); font-size: 9px; width: 18px; left: -9px; }
.mark.m-damage .flag { color: var(--broken); }
.mk.m-reconcile { background: var(--reconciled); }
.mk.m-gc { background: var(--gc); }
.mk.m-damage { background: var(--broken); }
.cursor { position: absolute; top: 0; width: 0; border-left: 2px solid #0b63ce; z-index: 8; pointer-events: none; }
#links { position: absolute; z-index: 6; pointer-events: none; overflow: visible; }
#links .link { fill: none; stroke: #3a3f47; stroke-width: 1.3; stroke-dasharray: 4 3; opacity: .75; }
#links .link.sel { stroke: #0b63ce; stroke-width: 2.2; opacity: 1; }
#links marker path { fill: #3a3f47; }
#detail { width: 460px; flex: none; overflow: auto; border-left: 1px solid var(--line); padding: 10px 14px; background: var(--panel); }
#detail h2 { font-size: 15px; margin: 0 0 6px; }
#detail h3 { font-size: 13px; margin: 12px 0 4px; }
#detail h4 { font-size: 12px; margin: 10px 0 3px; color: var(--muted); }
#detail .note { margin: 0 0 6px; }
#detail .muted, .muted { color: var(--muted); font-weight: normal; }
#detail pre { background: #fff; border: 1px solid var(--line); padding: 6px 8px; font-size: 11.5px; overflow: auto; max-height: 320px; margin: 0; }
#detail pre.diff { white-space: pre-wrap; overflow-wrap: anywhere; }
#detail .diff .add { color: #176d3a; }
#detail .diff .rm { color: #b0282a; }
#detail .diff .chg { color: #7a4b00; }
#detail .recs { margin: 0; padding-left: 0; list-style: none; max-height: 150px; overflow: auto; border: 1px solid var(--line); background: #fff; }
#detail .recs li { padding: 1px 6px; cursor: pointer; }
#detail .recs li:hover { background: #eef3f8; }
#detail .recs li.sel { background: #dbe9fb; }
#detail .recs li.fail { color: var(--broken); }
#detail .recs code { display: inline-block; min-width: 40px; color: var(--muted); }
#detail .recs .ty { display: inline-block; min-width: 130px; }
#detail .recs li { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#detail .badge { background: var(--broken); color: #fff; border-radius: 3px; padding: 0 5px; font-size: 11px; }
#detail ul.help { padding-left: 18px; }
`;
