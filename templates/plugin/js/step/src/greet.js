// The step's logic: plain functions, tested by `node --test` without a component.
import { InvalidInput } from './nova.js';

/** Parse JSON text that must be an object; `what` names it in errors. */
export function parseObject(text, what) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InvalidInput(`${what} is not JSON: ${e.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidInput(`${what} must be a JSON object`);
  }
  return value;
}

/** {"name": "Ada"} with {"greeting": "Hi"} gives {"message": "Hi, Ada!"}. */
export function greet(input, config) {
  const name = input.name ?? 'world';
  if (typeof name !== 'string') throw new InvalidInput('input.name must be a string');
  const greeting = config.greeting ?? 'Hello';
  if (typeof greeting !== 'string') throw new InvalidInput('config.greeting must be a string');
  return { message: `${greeting}, ${name}!` };
}
