// The virtual network: AKS nodes, the LiveKit pool (public IPs per node),
// PostgreSQL's delegated subnet and the private endpoints. The CIDRs are the
// chart's networkPolicy defaults (deploy/helm/voxfleet/values.yaml).

@description('Azure region.')
param location string

@description('Prefix of every resource name.')
param name string

@description('Tags on every resource.')
param tags object

@description('Address space of the virtual network.')
param addressSpace string = '10.42.0.0/16'

@description('AKS node subnet (system and agent pools).')
param nodesSubnet string = '10.42.0.0/21'

@description('Subnet of the optional LiveKit node pool.')
param livekitSubnet string = '10.42.8.0/22'

@description('Subnet delegated to PostgreSQL Flexible Server.')
param postgresSubnet string = '10.42.16.0/24'

@description('Subnet of the private endpoints (Redis, Key Vault, Azure OpenAI, registry).')
param endpointsSubnet string = '10.42.17.0/24'

resource nodesNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: '${name}-nodes-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

// WebRTC media reaches LiveKit on its nodes' public addresses.
resource livekitNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: '${name}-livekit-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'livekit-rtc-udp'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Udp'
          sourceAddressPrefix: 'Internet'
          sourcePortRange: '*'
          destinationAddressPrefix: livekitSubnet
          destinationPortRange: '50000-60000'
        }
      }
      {
        name: 'livekit-rtc-tcp'
        properties: {
          priority: 110
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'Internet'
          sourcePortRange: '*'
          destinationAddressPrefix: livekitSubnet
          destinationPortRange: '7881'
        }
      }
    ]
  }
}

resource dataNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: '${name}-data-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: '${name}-vnet'
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [addressSpace]
    }
    subnets: [
      {
        name: 'nodes'
        properties: {
          addressPrefix: nodesSubnet
          networkSecurityGroup: { id: nodesNsg.id }
        }
      }
      {
        name: 'livekit'
        properties: {
          addressPrefix: livekitSubnet
          networkSecurityGroup: { id: livekitNsg.id }
        }
      }
      {
        name: 'postgres'
        properties: {
          addressPrefix: postgresSubnet
          networkSecurityGroup: { id: dataNsg.id }
          delegations: [
            {
              name: 'postgres'
              properties: {
                serviceName: 'Microsoft.DBforPostgreSQL/flexibleServers'
              }
            }
          ]
        }
      }
      {
        name: 'endpoints'
        properties: {
          addressPrefix: endpointsSubnet
          networkSecurityGroup: { id: dataNsg.id }
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

output vnetId string = vnet.id
output nodesSubnetId string = vnet.properties.subnets[0].id
output livekitSubnetId string = vnet.properties.subnets[1].id
output postgresSubnetId string = vnet.properties.subnets[2].id
output endpointsSubnetId string = vnet.properties.subnets[3].id
output cidrs object = {
  nodes: nodesSubnet
  livekit: livekitSubnet
  postgres: postgresSubnet
  endpoints: endpointsSubnet
}
