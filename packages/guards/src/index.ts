/**
 * @packageDocumentation
 * Not built yet: this package has no public API so far. See its README.
 */
export {};
