/**
 * The bounded budget `npm test` runs (seeded, so CI failures replay): at least 200 runs of up to
 * 40 steps. Override with ATELIER_SIM_SEED / ATELIER_SIM_RUNS to explore locally.
 */
export const SIM_SEED = Number(process.env.ATELIER_SIM_SEED ?? 20261123);
export const SIM_RUNS = Number(process.env.ATELIER_SIM_RUNS ?? 200);
export const SIM_COMMANDS = 40;
