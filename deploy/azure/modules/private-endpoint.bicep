// A private endpoint for one service, with its private DNS zone linked to the
// virtual network, so pods resolve the service's name to a private address.

@description('Azure region.')
param location string

@description('Name of the endpoint.')
param name string

@description('Tags on every resource.')
param tags object

@description('Resource ID of the service.')
param serviceId string

@description('Private link sub-resource (group ID) of the service.')
param groupId string

@description('Private DNS zone of the service (privatelink.*).')
param dnsZone string

@description('Subnet of the private endpoints.')
param subnetId string

@description('The virtual network the zone is linked to.')
param vnetId string

resource zone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: dnsZone
  location: 'global'
  tags: tags
}

resource link 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: zone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: { id: vnetId }
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: { id: subnetId }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: serviceId
          groupIds: [groupId]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: replace(dnsZone, '.', '-')
        properties: { privateDnsZoneId: zone.id }
      }
    ]
  }
}

output endpointId string = endpoint.id
