/** Injection token: the validated configuration (`AppConfig`, docs/configuration.md). */
export const APP_CONFIG = Symbol('APP_CONFIG');

/** Injection token: the root pino logger; each user takes a child with its own `context`. */
export const ROOT_LOGGER = Symbol('ROOT_LOGGER');
