// Logs and metrics: a Log Analytics workspace (container logs, AKS diagnostics)
// and an Azure Monitor workspace for managed Prometheus (the voxfleet_* metrics).

@description('Azure region.')
param location string

@description('Prefix of every resource name.')
param name string

@description('Tags on every resource.')
param tags object

@description('Days logs are kept.')
param retentionDays int = 30

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: retentionDays
  }
}

resource prometheus 'Microsoft.Monitor/accounts@2023-04-03' = {
  name: '${name}-prometheus'
  location: location
  tags: tags
}

output logAnalyticsId string = logs.id
output prometheusId string = prometheus.id
