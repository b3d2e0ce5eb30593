// Azure Database for PostgreSQL Flexible Server with private access (its own
// delegated subnet and private DNS zone: no public endpoint), TLS required,
// zone-redundant high availability as an option.

@description('Azure region.')
param location string

@description('Prefix of every resource name.')
param name string

@description('Tags on every resource.')
param tags object

@description('Subnet delegated to Microsoft.DBforPostgreSQL/flexibleServers.')
param subnetId string

@description('The virtual network the private DNS zone is linked to.')
param vnetId string

@description('Administrator login.')
param adminLogin string = 'voxfleet'

@secure()
@description('Administrator password.')
param adminPassword string

@description('Compute SKU.')
param skuName string = 'Standard_D2ds_v5'

@description('Storage in GiB.')
param storageSizeGB int = 64

@description('Zone-redundant high availability: a standby in another zone, automatic failover.')
param zoneRedundantHa bool = false

@description('Geo-redundant backups.')
param geoRedundantBackup bool = true

@description('PostgreSQL major version.')
param version string = '16'

resource dnsZone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: '${name}.private.postgres.database.azure.com'
  location: 'global'
  tags: tags
}

resource dnsLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: dnsZone
  name: '${name}-pg-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: { id: vnetId }
  }
}

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: '${name}-pg'
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: 'GeneralPurpose'
  }
  properties: {
    version: version
    administratorLogin: adminLogin
    administratorLoginPassword: adminPassword
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: 14
      geoRedundantBackup: geoRedundantBackup ? 'Enabled' : 'Disabled'
    }
    highAvailability: {
      mode: zoneRedundantHa ? 'ZoneRedundant' : 'Disabled'
    }
    network: {
      delegatedSubnetResourceId: subnetId
      privateDnsZoneArmResourceId: dnsZone.id
      publicNetworkAccess: 'Disabled'
    }
    authConfig: {
      passwordAuth: 'Enabled'
      activeDirectoryAuth: 'Enabled'
    }
  }
  dependsOn: [dnsLink]
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: 'voxfleet'
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

resource logConnections 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'log_connections'
  properties: {
    value: 'on'
    source: 'user-override'
  }
}

output fqdn string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
output adminLogin string = adminLogin
