/** Start-up failures that are one clear line for the operator, not a stack trace. */

/** A listening port already taken: names the variable that moves it. */
export class PortInUseError extends Error {
  constructor(what: string, host: string, port: number, variable: string) {
    super(`${what} port ${port} is already in use on ${host}: set ${variable} to a free port`);
    this.name = 'PortInUseError';
  }
}
