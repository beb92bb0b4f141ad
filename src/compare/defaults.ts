/**
 * Default number of cases per list with full details. In a file of its own so `stride compare`
 * can declare its `--details` default without loading the comparison.
 */
export const COMPARE_DETAILS = 100;
