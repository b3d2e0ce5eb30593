// The monitor's charts: uPlot bundled into one ES module that the monitor
// serves itself (src/voxfleet/web/monitor/vendor/): no CDN at run time.
export { default } from 'uplot';
