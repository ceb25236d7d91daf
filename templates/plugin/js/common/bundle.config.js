// Rolldown options for `jco componentize --bundle`: nova's interfaces are
// imports of the component, not modules to bundle.
export default {
  external: [/^nova:/],
};
