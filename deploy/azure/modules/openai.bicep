// Azure OpenAI with its model deployments (the agents' speech-to-text, LLM and
// text-to-speech: the chart's providers.endpoints). Keyless: local auth is off
// and the agents' identity gets "Cognitive Services OpenAI User";
// reached through a private endpoint.

@description('Azure region (one that offers the models below).')
param location string

@description('Prefix of every resource name.')
param name string

@description('Tags on every resource.')
param tags object

@description('Model deployments: [{ name, model, version, sku, capacity }].')
param deployments array

@description('Principal IDs allowed to call the models.')
param userPrincipalIds array

@description('Private endpoint subnet.')
param endpointsSubnetId string

@description('The virtual network the private DNS zone is linked to.')
param vnetId string

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: '${name}-openai'
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: { name: 'S0' }
  identity: { type: 'SystemAssigned' }
  properties: {
    customSubDomainName: '${name}-openai'
    disableLocalAuth: true
    publicNetworkAccess: 'Disabled'
    networkAcls: { defaultAction: 'Deny' }
  }
}

// One at a time: the service refuses concurrent deployment writes on an account.
@batchSize(1)
resource models 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = [for d in deployments: {
  parent: account
  name: d.name
  sku: {
    name: d.sku
    capacity: d.capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: d.model
      version: d.version
    }
  }
}]

resource users 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (principalId, i) in userPrincipalIds: {
  name: guid(account.id, string(i), 'openai-user')
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

module endpoint 'private-endpoint.bicep' = {
  name: '${name}-openai-pe'
  params: {
    location: location
    name: '${name}-openai-pe'
    tags: tags
    serviceId: account.id
    groupId: 'account'
    dnsZone: 'privatelink.openai.azure.com'
    subnetId: endpointsSubnetId
    vnetId: vnetId
  }
}

output endpoint string = account.properties.endpoint
