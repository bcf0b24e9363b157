/**
 * The overlay backend: the shared conformance suite against both drivers, then what only this
 * backend has (kernel overlayfs details, crash and reboot recovery, flattening, bases, hooks).
 */
import { runConformance } from './conformance.ts';
import { overlayFixture } from './overlay-env.ts';

runConformance('overlay/overlayfs', () => overlayFixture('overlayfs'));
runConformance('overlay/copy', () => overlayFixture('copy'));
